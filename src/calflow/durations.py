"""Durations as calflow writes them: ``24h``, ``90m``, ``1d12h`` (parts add up)."""

from __future__ import annotations

import re

DURATION_HINT = "a duration looks like 24h, 90m, 1d12h"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*[smhdw]\s*)+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


def seconds(text: str) -> float:
    """``"24h"`` → 86400.0, ``"1d12h"`` → 129600.0; ``ValueError`` for anything else."""
    if _DURATION.match(text) is None:
        raise ValueError(f"not a duration: {text!r} ({DURATION_HINT})")
    return sum(float(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(text))


__all__ = ["DURATION_HINT", "seconds"]
