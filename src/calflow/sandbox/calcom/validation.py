"""Validation of ``CreateBookingInput_2024_08_13`` (unknown fields are stripped silently)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calflow.sandbox.calcom.envelope import CalcomError, bad_request, not_found, parse_iso
from calflow.sandbox.calcom.state import Attendee, CalcomState, EventType

LANGUAGES = frozenset(
    [
        "ar",
        "ca",
        "de",
        "es",
        "eu",
        "he",
        "id",
        "ja",
        "lv",
        "pl",
        "ro",
        "sr",
        "th",
        "vi",
        "az",
        "cs",
        "el",
        "es-419",
        "fi",
        "hr",
        "it",
        "km",
        "nl",
        "pt",
        "ru",
        "sv",
        "tr",
        "zh-CN",
        "bg",
        "da",
        "en",
        "et",
        "fr",
        "hu",
        "iw",
        "ko",
        "no",
        "pt-BR",
        "sk",
        "ta",
        "uk",
        "zh-TW",
        "bn",
    ]
)
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
LOCATION_TYPES = frozenset(
    {
        "address",
        "link",
        "integration",
        "phone",
        "attendeeAddress",
        "attendeePhone",
        "attendeeDefined",
        "organizersDefaultApp",
    }
)
MSG_METADATA = (
    "Metadata must have at most 50 keys, each key up to 40 characters, "
    "and string values up to 500 characters."
)


@dataclass
class CreateRequest:
    """A validated create-booking request."""

    start: datetime
    attendee: Attendee
    event_type: EventType
    length: int
    guests: list[str] = field(default_factory=list)
    location: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    booking_fields_responses: dict[str, Any] = field(default_factory=dict)


def _wrong(prop: str, message: str) -> str:
    return f"{prop} property is wrong,{message} "


def valid_time_zone(value: Any) -> bool:
    """Whether ``value`` is an IANA time zone name."""
    if not isinstance(value, str) or not value:
        return False
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def parse_attendee(raw: Any, errors: list[str], prefix: str = "attendee") -> Attendee | None:
    """Validate an attendee object, collecting class-validator style messages."""
    if not isinstance(raw, dict):
        errors.append(_wrong(prefix, f"{prefix} must be an object"))
        return None
    before = len(errors)
    name, email, tz = raw.get("name"), raw.get("email"), raw.get("timeZone")
    phone, language = raw.get("phoneNumber"), raw.get("language")
    if not isinstance(name, str) or not name.strip():
        errors.append(_wrong(prefix, f"{prefix}.name must be a string"))
    if not valid_time_zone(tz):
        errors.append(_wrong(prefix, f"{prefix}.timeZone must be a valid IANA time zone"))
    if email is not None and (not isinstance(email, str) or not _EMAIL.match(email)):
        errors.append(_wrong(prefix, f"{prefix}.email must be an email"))
    if phone is not None and (not isinstance(phone, str) or not E164.match(phone)):
        errors.append(_wrong(prefix, f"{prefix}.phoneNumber must be a valid phone number"))
    if email is None and phone is None:
        errors.append(
            _wrong(prefix, f"{prefix}.email is required when {prefix}.phoneNumber is not provided")
        )
    if language is not None and language not in LANGUAGES:
        errors.append(_wrong(prefix, f"{prefix}.language must be one of the supported locales"))
    if len(errors) > before:
        return None
    return Attendee(
        name=str(name).strip(),
        email=email or "",
        time_zone=str(tz),
        language=language or "en",
        phone_number=phone,
    )


def _metadata_ok(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) > 50:
        return False
    for key, item in value.items():
        if len(key) > 40:
            return False
        if isinstance(item, str) and len(item) > 500:
            return False
        if isinstance(item, dict | list):
            return False
    return True


def _location(raw: Any, et: EventType, errors: list[str]) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, dict) or raw.get("type") not in LOCATION_TYPES:
        errors.append(_wrong("location", "location must be one of the event type locations"))
        return None
    kind = raw["type"]
    if kind == "integration":
        integration = str(raw.get("integration", "cal-video"))
        return "integrations:daily" if integration == "cal-video" else f"integrations:{integration}"
    if kind == "link":
        return et.location
    if kind == "organizersDefaultApp":
        return "integrations:daily"
    for key in ("address", "phone", "location"):
        if isinstance(raw.get(key), str):
            return str(raw[key])
    return et.location


def resolve_event_type(state: CalcomState, body: dict[str, Any]) -> EventType:
    """The event type named by ``eventTypeId`` or ``eventTypeSlug`` + username/teamSlug."""
    et_id, slug = body.get("eventTypeId"), body.get("eventTypeSlug")
    username, team_slug = body.get("username"), body.get("teamSlug")
    if et_id:
        if not isinstance(et_id, int | float) or isinstance(et_id, bool):
            raise bad_request(_wrong("eventTypeId", "eventTypeId must be a number"))
        et = state.event_types.get(int(et_id))
        if et is None:
            raise not_found(f"Event type with id {int(et_id)} not found.")
        return et
    if isinstance(slug, str) and isinstance(username, str):
        user = state.user_by_username(username)
        if user is None:
            raise not_found(f"User with username {username} not found")
        found = state.event_type_by_slug(slug, user_id=user.id)
        if found is None:
            raise not_found(f"Event type with slug {slug} belonging to user {username} not found.")
        return found
    if isinstance(slug, str) and isinstance(team_slug, str):
        team = state.team_by_slug(team_slug)
        found = state.event_type_by_slug(slug, team_id=team.id) if team else None
        if found is None:
            raise not_found(f"Event type with slug {slug} belonging to team {team_slug} not found.")
        return found
    raise bad_request(
        "Either eventTypeId or eventTypeSlug + username or eventTypeSlug + teamSlug must be "
        "provided"
    )


def parse_create(state: CalcomState, body: Any) -> CreateRequest:
    """Validate a create body; 400/404 :class:`CalcomError` on failure."""
    if not isinstance(body, dict):
        body = {}
    body = {k: v for k, v in body.items() if v is not None}
    errors: list[str] = []
    start: datetime | None = None
    if "start" not in body:
        errors.append(_wrong("start", "start must be a valid ISO 8601 date string"))
    else:
        try:
            start = parse_iso(body["start"], "start")
        except CalcomError as exc:
            errors.append(_wrong("start", exc.message))
    attendee = parse_attendee(body.get("attendee"), errors)
    guests = body.get("guests", [])
    if not isinstance(guests, list) or not all(isinstance(g, str) for g in guests):
        errors.append(_wrong("guests", "each value in guests must be a string"))
    if "metadata" in body and not _metadata_ok(body["metadata"]):
        errors.append(_wrong("metadata", MSG_METADATA))
    responses = body.get("bookingFieldsResponses", {})
    if not isinstance(responses, dict):
        errors.append(_wrong("bookingFieldsResponses", "bookingFieldsResponses must be an object"))
    if errors or start is None or attendee is None:
        raise bad_request(", ".join(errors))
    et = resolve_event_type(state, body)
    length = et.length
    if "lengthInMinutes" in body:
        requested = body["lengthInMinutes"]
        if not et.length_options:
            raise bad_request(
                "Can't specify 'lengthInMinutes' because event type does not have multiple "
                "possible lengths. Please, remove the 'lengthInMinutes' field from the request."
            )
        if requested not in et.length_options:
            options = ", ".join(str(o) for o in et.length_options)
            raise bad_request(
                "Provided 'lengthInMinutes' is not one of the possible lengths for the event "
                f"type. The possible lengths are: {options}"
            )
        length = int(requested)
    location_errors: list[str] = []
    location = _location(body.get("location"), et, location_errors)
    if location_errors:
        raise bad_request(", ".join(location_errors))
    return CreateRequest(
        start=start,
        attendee=attendee,
        event_type=et,
        length=length,
        guests=list(guests),
        location=location,
        metadata=dict(body.get("metadata", {})),
        booking_fields_responses=dict(responses),
    )
