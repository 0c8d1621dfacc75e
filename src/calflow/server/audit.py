"""A rate-limited audit line for refused webhook deliveries.

A refused delivery (bad or missing signature) stores nothing: no event, no body. It
leaves one log line on the ``calflow.audit`` logger saying which integration, why,
from where and how big, at most ``burst`` lines per integration and then one per
``interval`` seconds, each naming how many refusals it stood for, so a flood of
forged deliveries can neither fill the disk nor hide.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("calflow.audit")


@dataclass
class _Bucket:
    tokens: float
    stamp: float
    suppressed: int = 0


class AuditLine:
    """Token buckets keyed by integration: ``burst`` lines, refilled at one per ``interval``."""

    def __init__(
        self,
        burst: int = 5,
        interval: float = 12.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.burst = burst
        self.interval = interval
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def refused(self, key: str, code: str, remote: str, size: int, headers: list[str]) -> bool:
        """Record one refusal; returns whether a line was written."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.clear()
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) / self.interval)
        bucket.stamp = now
        if bucket.tokens < 1:
            bucket.suppressed += 1
            return False
        bucket.tokens -= 1
        more = (
            f" (+{bucket.suppressed} more refused since the last line)" if bucket.suppressed else ""
        )
        bucket.suppressed = 0
        log.warning(
            "refused webhook delivery: integration=%s code=%s remote=%s bytes=%d headers=%s%s",
            key,
            code,
            remote,
            size,
            ",".join(sorted(headers)),
            more,
        )
        return True
