"""The kinds of value an integration field takes, each checked when the field is set.

An app declares a field's ``kind`` (:class:`calflow.flowapp.model.CredentialField`) and
:meth:`calflow.flowapp.app.App.check_settings` refuses a value of the wrong kind when an
integration is added or updated, naming the field and what it takes, instead of the
first call failing later. Values arrive as text (the CLI's ``--set``, forms) or as JSON
scalars (the API); both are accepted when they mean a value of the kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from calflow.errors import ValidationError
from calflow.netguard import check_url_syntax
from calflow.workflows.suggest import is_zone, zone

__all__ = ["KINDS", "TEXT", "problem"]

TEXT = "text"
"""Any text (the default kind)."""

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
_SHORT_CODE = re.compile(r"\d{3,8}")
_ALPHANUMERIC = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")
_COUNTRY = "a two-letter country code such as US, GB or FR"


def _text(value: Any) -> str | None:
    return None


def _url(value: Any) -> str | None:
    try:
        check_url_syntax(str(value))
    except ValidationError as exc:
        why = exc.errors[0].message if exc.errors else exc.message
        return f"must be an http or https URL: {why}"
    return None


def _e164(value: str) -> bool:
    if not value.startswith("+"):
        return False
    import phonenumbers  # only when a phone number is checked: it is slow to import

    try:
        return bool(phonenumbers.is_possible_number(phonenumbers.parse(value, None)))
    except phonenumbers.NumberParseException:
        return False


def _phone(value: Any) -> str | None:
    if _e164(str(value).strip()):
        return None
    return "must be a phone number in E.164 form (+ country code and number, e.g. +14155550123)"


def _sender(value: Any) -> str | None:
    text = str(value).strip()
    if _e164(text) or _SHORT_CODE.fullmatch(text) or _ALPHANUMERIC.fullmatch(text):
        return None
    return (
        "must be a phone number in E.164 form (e.g. +14155550123), a short code (digits) "
        "or an alphanumeric sender ID (at most 11 letters, digits or spaces)"
    )


def _time_zone(value: Any) -> str | None:
    text = str(value).strip()
    if text and is_zone(text):
        return None
    near = zone(text)
    hint = f"; did you mean {near!r}?" if near else ""
    return f"must be an IANA time zone such as Europe/Paris or America/New_York{hint}"


def _boolean(value: Any) -> str | None:
    if isinstance(value, bool) or str(value).strip().lower() in (*_TRUE, *_FALSE):
        return None
    return "must be true or false"


def _integer_of(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if re.fullmatch(r"[+-]?\d{1,18}", text) else None


def _integer(value: Any) -> str | None:
    return None if _integer_of(value) is not None else "must be a whole number"


def _port(value: Any) -> str | None:
    found = _integer_of(value)
    return None if found is not None and 1 <= found <= 65535 else "must be a port, 1 to 65535"


def _number(value: Any) -> str | None:
    if isinstance(value, bool):
        return "must be a positive number"
    try:
        found = float(str(value).strip())
    except ValueError:
        return "must be a positive number"
    return None if 0 < found < float("inf") else "must be a positive number"


def _country(value: Any) -> str | None:
    import phonenumbers

    text = str(value).strip().upper()
    if text in phonenumbers.SUPPORTED_REGIONS:
        return None
    return f"must be {_COUNTRY}"


KINDS: dict[str, Callable[[Any], str | None]] = {
    TEXT: _text,
    "url": _url,
    "phone": _phone,
    "sender": _sender,
    "time_zone": _time_zone,
    "boolean": _boolean,
    "integer": _integer,
    "port": _port,
    "number": _number,
    "country": _country,
}
"""Every kind a field may declare, with its check."""


def problem(kind: str, value: Any) -> str | None:
    """What is wrong with ``value`` for a field of ``kind`` (never quoting it); None if
    nothing. An unknown kind checks nothing (``App.problems`` reports it)."""
    check = KINDS.get(kind)
    return None if check is None else check(value)
