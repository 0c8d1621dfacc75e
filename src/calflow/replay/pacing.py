"""A client-side rate limit shared by every worker, with a pause for ``Retry-After``."""

from __future__ import annotations

import asyncio
import time


class Pacer:
    """Hands out send slots at most ``rate`` per second (``None``: no limit).

    Each caller reserves the next free slot and sleeps until it, so N workers together
    never exceed the rate, and there is no burst after an idle spell. ``pause`` holds
    every caller back (a target's 429 with ``Retry-After`` slows the whole replay, not
    one worker).
    """

    def __init__(self, rate: float | None) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        self._interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, time.monotonic() + max(0.0, seconds))

    async def acquire(self) -> None:
        now = time.monotonic()
        slot = max(now, self._paused_until)
        if self._interval:
            slot = max(slot, self._next)
            self._next = slot + self._interval
        delay = slot - now
        if delay > 0:
            await asyncio.sleep(delay)
