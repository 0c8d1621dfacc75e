"""Cursor pagination of ``GET /v1/events`` (and of the small lists) over the sorted index.

A cursor is the sort key ``(start epoch seconds, seq)`` of the boundary entry, encoded
as URL-safe base64 of ``"v1:<start>:<seq>"``. Keys, not offsets: a page boundary does not
move when events are added or removed elsewhere, so a walk with ``after`` sees every
event that existed when it started exactly once. ``after`` = entries that come after the
key in the requested direction, ``before`` = entries that come before it.
"""

from __future__ import annotations

import base64
import binascii
import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from calflow.sandbox.savvycal.errors import field_errors

Key = tuple[int, int]
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def encode_cursor(key: Key) -> str:
    """The opaque cursor of ``key``."""
    return base64.urlsafe_b64encode(f"v1:{key[0]}:{key[1]}".encode()).decode()


def decode_cursor(value: str, name: str) -> Key:
    """The key inside a cursor; 422 ``{"errors": {name: ["is invalid"]}}`` when malformed."""
    try:
        text = base64.urlsafe_b64decode(value.encode() + b"=" * (-len(value) % 4)).decode()
        tag, start, seq = text.split(":")
        if tag != "v1":
            raise ValueError(tag)
        return int(start), int(seq)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise field_errors({name: ["is invalid"]}) from None


def parse_limit(raw: str | None) -> int:
    """``limit``: default 20; values above 100 are clamped to 100, below 1 to 1."""
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise field_errors({"limit": ["is invalid"]}) from None
    return max(1, min(value, MAX_LIMIT))


@dataclass
class Page:
    """One page: the keys of its entries (in presentation order) and its cursors."""

    keys: list[Key]
    before: str | None
    after: str | None
    limit: int

    def metadata(self) -> dict[str, str | int | None]:
        """The ``metadata`` object."""
        return {"before": self.before, "after": self.after, "limit": self.limit}


def paginate(
    order: list[Key],
    lo: int,
    hi: int,
    match: Callable[[Key], bool],
    *,
    descending: bool,
    limit: int,
    after: Key | None,
    before: Key | None,
) -> Page:
    """Page over ``order[lo:hi]`` (sorted ascending) keeping keys for which ``match`` holds."""

    def forward(start: int) -> Iterable[int]:  # presentation order from ``start``
        return range(min(start, hi - 1), lo - 1, -1) if descending else range(max(start, lo), hi)

    def backward(start: int) -> Iterable[int]:  # reverse presentation order from ``start``
        return range(max(start, lo), hi) if descending else range(min(start, hi - 1), lo - 1, -1)

    def collect(indices: Iterable[int], n: int) -> list[int]:
        found: list[int] = []
        for i in indices:
            if match(order[i]):
                found.append(i)
                if len(found) == n:
                    break
        return found

    def next_pos(i: int) -> int:  # the index after i in presentation order
        return i - 1 if descending else i + 1

    def prev_pos(i: int) -> int:
        return i + 1 if descending else i - 1

    if before is not None and after is None:
        start = (
            bisect.bisect_right(order, before)
            if descending
            else bisect.bisect_left(order, before) - 1
        )
        found = collect(backward(start), limit + 1)
        more_before = len(found) > limit
        found = found[:limit][::-1]
        more_after = bool(found) and bool(collect(forward(next_pos(found[-1])), 1))
    else:
        if after is None:
            start = hi - 1 if descending else lo
        else:
            start = (
                bisect.bisect_left(order, after) - 1
                if descending
                else bisect.bisect_right(order, after)
            )
        found = collect(forward(start), limit + 1)
        more_after = len(found) > limit
        found = found[:limit]
        more_before = (
            after is not None and bool(found) and bool(collect(backward(prev_pos(found[0])), 1))
        )
    keys = [order[i] for i in found]
    return Page(
        keys=keys,
        before=encode_cursor(keys[0]) if keys and more_before else None,
        after=encode_cursor(keys[-1]) if keys and more_after else None,
        limit=limit,
    )
