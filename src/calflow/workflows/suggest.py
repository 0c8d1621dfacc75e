"""Suggestions for misspelt names in workflow definitions: "did you mean 'phone'?".

:func:`closest` picks the known name nearest to a wrong one (``difflib``, with case and
separators ignored, or the one name that starts the other: ``phone_number`` → ``phone``);
:func:`zone` does the same for IANA time zones, by full name or by city.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

__all__ = ["closest", "did_you_mean", "is_zone", "zone"]

_SEPARATORS = re.compile(r"[\s.\-_]+")


def _plain(name: str) -> str:
    return _SEPARATORS.sub("_", name.strip().lower())


def closest(wrong: str, known: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The name in ``known`` that ``wrong`` most likely meant, or None if none is close
    (``cutoff``: the least ``difflib`` similarity, 0 to 1)."""
    plain = {_plain(k): k for k in known}
    key = _plain(wrong)
    if key in plain:
        return plain[key]
    found = difflib.get_close_matches(key, list(plain), n=1, cutoff=cutoff)
    if found:
        return plain[found[0]]
    starts = [k for k in plain if len(k) >= 3 and (key.startswith(k) or k.startswith(key))]
    return plain[starts[0]] if len(starts) == 1 else None


def did_you_mean(wrong: str, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` when a name in ``known`` is close to ``wrong``, else ``""``."""
    found = closest(wrong, known)
    return f"; did you mean {found!r}?" if found is not None and found != wrong else ""


def is_zone(name: str) -> bool:
    """Whether ``name`` is a time zone ``zoneinfo`` can load (``UTC``, ``Europe/Paris``)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory, e.g. Europe
        return False
    return True


@lru_cache(maxsize=1)
def _zones() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


def zone(wrong: str) -> str | None:
    """The time zone ``wrong`` most likely meant: ``europe/paris`` or ``Europe/Pariss`` →
    ``Europe/Paris``, ``Paris`` → ``Europe/Paris``; None if none is close."""
    zones = _zones()
    found = closest(wrong, zones)
    if found is not None:
        return found
    cities = {z.rsplit("/", 1)[-1]: z for z in zones if "/" in z}
    city = closest(wrong.rsplit("/", 1)[-1], cities, cutoff=0.8)  # short names: stricter
    return cities[city] if city is not None else None
