"""Defensive readers shared by the normalizers: bodies come from the network, so every
field may be missing or of the wrong JSON type. Nothing here raises on bad values: an
unusable value reads as ``None`` (or empty)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import fields, replace
from datetime import UTC, datetime
from typing import Any

import phonenumbers

from calflow.errors import FieldError, ValidationError
from calflow.events.model import KINDS, SOURCES, Person, Source

_EMPTY: Mapping[str, Any] = {}


def as_map(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a JSON object, else an empty mapping."""
    return value if isinstance(value, Mapping) else _EMPTY


def as_maps(value: Any) -> list[Mapping[str, Any]]:
    """The objects of a JSON array (other items and non-arrays are skipped)."""
    if not isinstance(value, list | tuple):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def text(value: Any) -> str | None:
    """A non-blank string, else ``None``."""
    return value if isinstance(value, str) and value.strip() else None


def ident(value: Any) -> str | None:
    """An id as text: a non-blank string or a number (booleans are not ids)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return str(value)
        except ValueError:  # an integer too long to print
            return None
    return text(value)


def flag(value: Any) -> bool | None:
    """A JSON boolean, else ``None``."""
    return value if isinstance(value, bool) else None


def first(*values: str | None) -> str | None:
    """The first value that is set."""
    return next((v for v in values if v), None)


def utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime (naive means UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 instant as an aware UTC datetime (naive means UTC); ``None`` if unusable:
    not an instant, or (in UTC) outside the years 1000-9999, where a date is a mistake or
    an attack (and readers of four-digit years, or date arithmetic, would fail on it)."""
    raw = text(value)
    if raw is None or len(raw) > 64:
        return None
    raw = raw.strip()
    if raw[-1] in "Zz":
        raw = raw[:-1] + "+00:00"
    try:
        parsed = utc(datetime.fromisoformat(raw))
    except (ValueError, OverflowError):
        return None
    return parsed if 1000 <= parsed.year <= 9999 else None


def e164(value: Any, region: Any = None) -> str | None:
    """A phone number in E.164, or ``None`` when it cannot be one.

    Like :func:`calflow.apps.cal_com.phones.to_e164` (``phonenumbers``), but never
    raises: the provider already accepted the number, so one that is possible for its
    country is kept even when the metadata does not list its range (``+44 7700 900…``);
    a number without ``+country`` needs ``region`` (two letters).
    """
    raw = text(value)
    if raw is None:
        return None
    hint = region.upper() if isinstance(region, str) and len(region) == 2 else None
    return _e164(raw, hint)


@functools.lru_cache(maxsize=4096)
def _e164(raw: str, hint: str | None) -> str | None:
    """Parsing is costly (a few % of the receiver's CPU) and the same attendee's number
    comes back with every change of their bookings: the answers are kept."""
    try:
        number = phonenumbers.parse(raw, hint)
    except phonenumbers.NumberParseException:
        return None
    if not (phonenumbers.is_valid_number(number) or phonenumbers.is_possible_number(number)):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def http_url(value: Any) -> str | None:
    """``value`` when it is an http(s) URL."""
    raw = text(value)
    if raw is None:
        return None
    raw = raw.strip()
    return raw if raw.lower().startswith(("https://", "http://")) else None


def language(value: Any) -> str | None:
    """A locale given as ``"en"`` or as ``{"locale": "en", …}``."""
    if isinstance(value, Mapping):
        return text(value.get("locale"))
    return text(value)


def split_name(name: str | None) -> tuple[str | None, str | None]:
    """(first, last) from a display name, when it looks like a person's name."""
    if not name or "@" in name:
        return None, None
    head, _, tail = name.strip().partition(" ")
    return text(head), text(tail.strip())


def _name_part(value: Any) -> str | None:
    found = text(value)
    return None if found is None or "@" in found else found  # an email is not a name


def person(
    *,
    name: Any = None,
    email: Any = None,
    time_zone: Any = None,
    lang: Any = None,
    phone: Any = None,
    first_name: Any = None,
    last_name: Any = None,
    no_show: Any = None,
    region: Any = None,
) -> Person:
    """A :class:`Person` from raw values; first/last name derived from the name if absent."""
    display = text(name)
    given, family = _name_part(first_name), _name_part(last_name)
    if given is None and family is None:
        given, family = split_name(display)
    if display is None and (given or family):
        display = " ".join(p for p in (given, family) if p)
    return Person(
        name=display,
        email=text(email),
        time_zone=text(time_zone),
        language=language(lang),
        phone=e164(phone, region),
        first_name=given,
        last_name=family,
        no_show=flag(no_show),
    )


def seat_key(email: str | None) -> str | None:
    """The seat of an attendee in a shared booking: their email, trimmed and lowercased."""
    found = text(email)
    return found.strip().lower() if found else None


def same_email(a: str | None, b: str | None) -> bool:
    return bool(a and b and a.strip().lower() == b.strip().lower())


def merge_people(people: Iterable[Person]) -> tuple[Person, ...]:
    """People in order, one per email (a repeated email fills the first one's gaps)."""
    out: list[Person] = []
    for p in people:
        index = next((i for i, seen in enumerate(out) if same_email(seen.email, p.email)), None)
        if index is None:
            out.append(p)
            continue
        seen = out[index]
        gaps = {
            f.name: getattr(p, f.name)
            for f in fields(Person)
            if getattr(seen, f.name) is None and getattr(p, f.name) is not None
        }
        if gaps:
            out[index] = replace(seen, **gaps)
    return tuple(out)


def with_phone(people: tuple[Person, ...], index: int, phone: str | None) -> tuple[Person, ...]:
    """``people`` with ``phone`` given to ``people[index]`` when it has none."""
    if phone is None or not 0 <= index < len(people) or people[index].phone:
        return people
    updated = list(people)
    updated[index] = replace(people[index], phone=phone)
    return tuple(updated)


def index_of(people: tuple[Person, ...], email: Any, default: int | None = 0) -> int | None:
    """Index of the person with ``email``; ``default`` when there is no such email."""
    wanted = text(email)
    if wanted:
        found = next((i for i, p in enumerate(people) if same_email(p.email, wanted)), None)
        if found is not None:
            return found
    return default if people else None


def pick_reason(
    kind: str, cancel: str | None, reject: str | None, reschedule: str | None
) -> str | None:
    """The reason that goes with ``kind``."""
    if kind == "cancelled":
        return cancel
    if kind == "declined":
        return reject or cancel
    if kind in ("rescheduled", "requested", "attendee_rescheduled"):
        return reschedule
    return first(cancel, reject, reschedule)


def known_kind(kind: str) -> str:
    """``kind`` when it is a normalized kind, else ``other``."""
    return kind if kind in KINDS else "other"


def require_object(body: Any, provider: str) -> Mapping[str, Any]:
    """``body`` as a mapping, or a ``ValidationError`` saying it is not a delivery."""
    if not isinstance(body, Mapping):
        got = "null" if body is None else type(body).__name__
        raise ValidationError(
            f"a {provider} webhook delivery is a JSON object, got {got}",
            [FieldError("", f"expected an object, got {got}", "type")],
        )
    return body


def check_source(source: Any) -> Source:
    if source not in SOURCES:
        raise ValidationError(
            f"source must be one of {', '.join(SOURCES)}, got {source!r}",
            [FieldError("source", f"{source!r} is not a source", "enum")],
        )
    result: Source = source
    return result


def received(value: datetime | None) -> datetime:
    """When the event was received: ``value`` in UTC, or now."""
    return utc(value) if value is not None else datetime.now(UTC)
