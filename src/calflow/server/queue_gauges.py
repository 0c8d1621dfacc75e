"""Gauges of the engine's queue, read from the database when ``/metrics`` is scraped.

``calflow_runs_due``: runs whose next step is due now and not yet taken (queued or
waiting with ``next_due_at`` passed); ``calflow_oldest_due_run_seconds``: how late the
oldest of them is (0 when none), the reminder lateness to alert on; and
``calflow_dead_letters``: failed runs no route took (``calflow runs list --status
failed``), read at each scrape (:mod:`calflow.workflows.backlog`), summed over every
workspace like the counters.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from calflow.workflows.backlog import read_backlog

__all__ = ["QueueGauges"]

log = logging.getLogger("calflow.metrics")


class QueueGauges(Collector):
    """The queue's gauges on ``engine`` (module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        try:
            backlog = read_backlog(self.engine)
        except Exception as exc:  # a scrape still answers the other metrics
            log.warning("queue gauges unavailable: %s", type(exc).__name__)
            return
        yield GaugeMetricFamily(
            "calflow_runs_due", "Runs whose next step is due and not yet taken.",
            value=backlog.due,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "calflow_oldest_due_run_seconds",
            "How late the oldest due run is (0: none is due).",
            value=backlog.oldest_late_s,
        )
        yield GaugeMetricFamily(
            "calflow_dead_letters", "Failed runs no route took (dead letters).",
            value=backlog.dead,
        )  # fmt: skip
