"""The person fields of a booking or an added attendee: their checks and the Attendee."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calflow.sandbox.savvycal.state import Attendee, SavvycalState

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def zone(name: Any) -> ZoneInfo | None:
    """The IANA zone ``name``, or ``None`` when it is not one."""
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def person_errors(data: dict[str, Any]) -> dict[str, list[str]]:
    """SavvyCal's 422 messages for ``display_name``, ``email``, ``time_zone`` (required),
    ``phone_number`` (a string) and ``fields`` (a list of objects), by field."""
    errors: dict[str, list[str]] = {}
    for name in ("display_name", "email", "time_zone"):
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            errors[name] = ["can't be blank"]
    if "email" not in errors and not _EMAIL.match(data["email"]):
        errors["email"] = ["has invalid format"]
    if "time_zone" not in errors and zone(data["time_zone"]) is None:
        errors["time_zone"] = ["is invalid"]
    phone = data.get("phone_number")
    if phone is not None and not isinstance(phone, str):
        errors["phone_number"] = ["is invalid"]
    fields = data.get("fields", [])
    if not isinstance(fields, list) or not all(isinstance(f, dict) for f in fields):
        errors["fields"] = ["is invalid"]
    return errors


def new_attendee(state: SavvycalState, data: dict[str, Any], *, scheduler: bool) -> Attendee:
    """The Attendee of checked person fields (``person_errors`` found none)."""
    name = data["display_name"].strip()
    first, _, last = name.partition(" ")
    return Attendee(
        id=state.new_id("attendee"),
        email=data["email"].strip(),
        display_name=name,
        first_name=first,
        last_name=last,
        time_zone=data["time_zone"],
        phone_number=data.get("phone_number"),
        is_scheduler=scheduler,
        fields=[dict(f) for f in data.get("fields", [])],
    )
