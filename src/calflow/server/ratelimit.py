"""The API rate limit of each workspace token (``CALFLOW_API_RATE_LIMIT``).

Counted with the ``limits`` package's moving window in this process's memory. The REST
API and MCP are served by the one ``calflow serve`` process (``--workers`` children run
workflows only, never the API), so the count is exact for a server; several ``calflow
serve`` processes behind a load balancer each count their own share, and the operator
divides the limit by their number. A count in the database would be shared but cost a
write per API call, which on SQLite queues behind every webhook.

Provider webhooks are not counted here: they are signed deliveries, not token calls.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from calflow.errors import ConfigError

__all__ = ["TokenRateLimit", "parse_rate"]


def parse_rate(text: str) -> list[RateLimitItem]:
    """The limits of ``text`` (``20/second;600/minute``); none for an empty text.

    A text that does not parse is a ``ConfigError`` naming the setting and the notation."""
    if not text.strip():
        return []
    try:
        return list(parse_many(text))
    except ValueError:
        raise ConfigError(
            f"invalid settings: CALFLOW_API_RATE_LIMIT: {text[:80]!r} is not a rate; write "
            "COUNT/PERIOD (second, minute, hour, day), several joined by ';': 20/second;600/minute"
        ) from None


class TokenRateLimit:
    """Whether a token may make one more call now, and if not, when it may."""

    def __init__(self, rate: str) -> None:
        self.rate = rate
        self.items = parse_rate(rate)
        self._limiter = MovingWindowRateLimiter(MemoryStorage()) if self.items else None

    def hit(self, token_id: str) -> float | None:
        """Count one call of ``token_id``; None if allowed, else the seconds to wait
        (at least 1: ``Retry-After`` takes whole seconds)."""
        if self._limiter is None:
            return None
        limiter = self._limiter
        # a refused call uses none of the token's allowance, in any window
        refused = [item for item in self.items if not limiter.test(item, "api", token_id)]
        if not refused:
            refused = [item for item in self.items if not limiter.hit(item, "api", token_id)]
            if not refused:
                return None
        now = time.time()
        reset = max(limiter.get_window_stats(i, "api", token_id).reset_time for i in refused)
        return float(max(1, math.ceil(reset - now)))

    def describe(self) -> str:
        """The limit as people read it: ``20 per 1 second, 600 per 1 minute``."""
        return ", ".join(str(item) for item in self.items) or "none"

    def refusal(self, wait: float) -> tuple[str, dict[str, str]]:
        """The message and headers of a 429 for a wait of ``wait`` seconds."""
        seconds = f"{wait:.0f}"
        message = (
            f"this API token is limited to {self.describe()} (CALFLOW_API_RATE_LIMIT); "
            f"retry after {seconds} s"
        )
        return message, {"Retry-After": seconds}
