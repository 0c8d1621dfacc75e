"""``--since`` / ``--until`` values: ISO dates, ISO date-times, or a relative age."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from calflow.errors import FieldError, ValidationError

_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str | None, field: str, now: datetime | None = None) -> datetime | None:
    """An aware UTC instant from ``2026-01-31``, ``2026-01-31T09:00:00+01:00`` or ``30d``.

    A date is midnight UTC; a date-time without an offset is UTC; ``N[smhdw]`` is that
    long before ``now``. Anything else is a ``ValidationError`` naming the option.
    """
    if text is None or not text.strip():
        return None
    raw = text.strip()
    rel = _RELATIVE.match(raw)
    if rel:
        amount, unit = int(rel.group(1)), rel.group(2).lower()
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"--{field} {raw!r} is not a date or time",
            [
                FieldError(
                    field,
                    "use an ISO date (2026-01-31), an ISO date-time "
                    "(2026-01-31T09:00:00Z) or an age such as 30d, 12h, 2w",
                    "format",
                )
            ],
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
