"""How many SMS segments a body takes: GSM-7 (160, or 153 per part) else UCS-2 (70 / 67)."""

from __future__ import annotations

_GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = "^{}\\[~]|€\f"
_BASIC = frozenset(_GSM_BASIC)
_EXTENDED = frozenset(_GSM_EXTENDED)


def is_gsm7(body: str) -> bool:
    """Whether every character is in the GSM 03.38 alphabet (basic or extension table)."""
    return all(c in _BASIC or c in _EXTENDED for c in body)


def segment_count(body: str) -> int:
    """Segments Twilio bills for ``body`` (extension characters count twice in GSM-7)."""
    if is_gsm7(body):
        units = sum(2 if c in _EXTENDED else 1 for c in body)
        single, part = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2  # UCS-2 code units (emoji take two)
        single, part = 70, 67
    if units <= single:
        return 1
    return -(-units // part)
