"""Opaque cursors for keyset pagination: the (timestamp, id) of a page's last item.

A cursor is URL-safe base64 of that pair, so clients cannot depend on its inside and
pages stay stable while new rows arrive at the top. A cursor that does not decode is
a 422 naming the ``cursor`` parameter, never a server error.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from calflow.errors import FieldError, ValidationError

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def encode(at: str, item_id: str) -> str:
    """The cursor after the item with this ISO timestamp and id."""
    raw = json.dumps([at, item_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str | None) -> tuple[datetime, str] | None:
    """The (timestamp, id) a cursor stands for; ``ValidationError`` if it is not one."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, item_id = json.loads(raw)
        when = datetime.fromisoformat(at)
        if not isinstance(item_id, str) or when.tzinfo is None:
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValidationError(
            "invalid cursor",
            [FieldError("cursor", "not a cursor from a previous page of this list", "format")],
        ) from None
    return when.astimezone(UTC), item_id


def page(
    rows: Sequence[dict[str, Any]], limit: int, at_key: str
) -> tuple[list[dict[str, Any]], str | None]:
    """The first ``limit`` of ``rows`` (fetched as ``limit + 1``) and the next cursor."""
    items = list(rows[:limit])
    if len(rows) <= limit or not items:
        return items, None
    last = items[-1]
    return items, encode(str(last[at_key]), str(last["id"]))
