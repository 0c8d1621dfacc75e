"""Building the message: addresses (one, a comma-separated list, or an array), MIME parts."""

from __future__ import annotations

import email.utils
from collections.abc import Iterable, Mapping
from email.message import EmailMessage
from email.utils import formataddr, getaddresses
from typing import Any

from calflow.errors import FieldError, ValidationError

#: Headers the action sets itself; ``headers`` may not override them.
_OWN_HEADERS = {"from", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id"}


def addresses(value: Any, path: str) -> list[tuple[str, str]]:
    """``(name, address)`` pairs from ``"a@x.org, Bo <b@y.org>"`` or a list of such strings."""
    if value in (None, "", []):
        return []
    items: Iterable[Any] = [value] if isinstance(value, str) else value
    texts = [str(item) for item in items]
    pairs = getaddresses(texts)
    bad = [addr for _, addr in pairs if not _looks_like_address(addr)]
    if bad or not pairs:
        shown = ", ".join(repr(b) for b in bad) or repr(", ".join(texts))
        raise ValidationError(
            f"{path} has an address that is not valid: {shown}",
            [FieldError(path, f"not an email address: {shown}", "email")],
        )
    return pairs


def _looks_like_address(addr: str) -> bool:
    local, _, domain = addr.rpartition("@")
    return bool(local) and bool(domain) and " " not in addr and "." in domain.strip(".")


def _header(pairs: list[tuple[str, str]]) -> str:
    return ", ".join(formataddr(p) for p in pairs)


def build(data: Mapping[str, Any], sender: str) -> tuple[EmailMessage, str, list[str]]:
    """``(message, envelope sender, envelope recipients)`` for validated input."""
    from_pair = addresses(sender, "from")[0]
    to, cc, bcc = (addresses(data.get(k), k) for k in ("to", "cc", "bcc"))
    if not to:
        raise ValidationError("to is required", [FieldError("to", "is required", "required")])
    msg = EmailMessage()
    msg["From"] = formataddr(from_pair)
    msg["To"] = _header(to)
    if cc:
        msg["Cc"] = _header(cc)
    reply_to = addresses(data.get("reply_to"), "reply_to")
    if reply_to:
        msg["Reply-To"] = _header(reply_to)
    msg["Subject"] = data["subject"]
    msg["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    domain = from_pair[1].rpartition("@")[2] or None
    msg["Message-ID"] = email.utils.make_msgid(domain=domain)
    for name, value in (data.get("headers") or {}).items():
        if name.lower() in _OWN_HEADERS:
            raise ValidationError(
                f"headers may not set {name!r}",
                [FieldError(f"headers.{name}", "is set from the other fields", "header")],
            )
        msg[name] = value
    text, html = data.get("text"), data.get("html")
    if text:
        msg.set_content(text)
        if html:
            msg.add_alternative(html, subtype="html")
    else:
        msg.set_content(html or "", subtype="html")
    recipients = [addr for _, addr in (*to, *cc, *bcc)]
    return msg, from_pair[1], list(dict.fromkeys(recipients))
