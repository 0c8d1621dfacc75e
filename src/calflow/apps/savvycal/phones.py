"""E.164 phone normalization for SavvyCal bookings (Cal.com's helper, SavvyCal's field names)."""

from __future__ import annotations

from calflow.apps.cal_com.phones import to_e164 as _to_e164
from calflow.errors import FieldError, ValidationError

_CAL_HINT = "defaultPhoneRegion"
_HINT = "default_phone_region"


def to_e164(raw: str, region: str | None, path: str) -> str:
    """``raw`` as E.164 (``+14155550123``); a ``ValidationError`` on ``path`` otherwise."""
    try:
        return _to_e164(raw, region, path)
    except ValidationError as exc:
        raise ValidationError(
            exc.message.replace(_CAL_HINT, _HINT),
            [FieldError(e.path, e.message.replace(_CAL_HINT, _HINT), e.rule) for e in exc.errors],
        ) from exc
