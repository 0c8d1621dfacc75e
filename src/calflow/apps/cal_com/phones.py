"""E.164 phone normalization (Cal.com's SMS reminders need it)."""

from __future__ import annotations

import phonenumbers

from calflow.errors import FieldError, ValidationError


def to_e164(raw: str, region: str | None, path: str) -> str:
    """``raw`` as E.164 (``+14155550123``); a ``ValidationError`` on ``path`` otherwise."""
    try:
        number = phonenumbers.parse(raw, region.upper() if region else None)
    except phonenumbers.NumberParseException as exc:
        hint = "" if region else " (give it with +country code, or set defaultPhoneRegion)"
        raise ValidationError(
            f"{path} is not a phone number{hint}",
            [FieldError(path, f"{raw!r} is not a phone number: {exc}{hint}", "phone")],
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(
            f"{path} is not a valid phone number",
            [FieldError(path, f"{raw!r} is not a valid phone number", "phone")],
        )
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
