"""calflow's Prometheus metrics (``prometheus-client``), served at ``GET /metrics``.

Every label is bounded and names no tenant: providers, kinds, statuses, apps, actions,
ports and route groups, never a workspace, integration, booking or run id. The counts
add up every workspace, which is why ``/metrics`` is for the operator only
(``calflow.server.metrics_route``).

With ``calflow serve --workers N`` the child workers count too: the server sets
``PROMETHEUS_MULTIPROC_DIR`` before anything imports ``prometheus_client`` and the
children inherit it, so each process writes its values to files there and the server
adds them up when scraped (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.registry import REGISTRY, Collector

__all__ = [
    "DELIVERIES",
    "EVENTS",
    "HTTP_REQUESTS",
    "LATENESS_SECONDS",
    "MULTIPROC_ENV",
    "OUTBOUND_ERRORS",
    "REPLAY_ITEMS",
    "REQUEST_SECONDS",
    "RUNS",
    "STEPS",
    "STEP_SECONDS",
    "exposition",
    "route_group",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

DELIVERIES = Counter(
    "calflow_webhook_deliveries",
    "Webhook deliveries received, by provider and outcome "
    "(stored, duplicate, stale, or http_<status> when refused).",
    ["provider", "outcome"],
)
EVENTS = Counter(
    "calflow_events_stored",
    "Booking events stored in the inbox (duplicates not counted), by kind and source.",
    ["kind", "source"],
)
RUNS = Counter(
    "calflow_runs_finished",
    "Workflow runs that finished, by status (succeeded, failed, cancelled).",
    ["status"],
)
STEPS = Counter(
    "calflow_step_outcomes",
    "Workflow step outcomes, by app, action and output port (skipped included).",
    ["app", "action", "port"],
)
STEP_SECONDS = Histogram(
    "calflow_step_duration_seconds",
    "Time a step's action call took (retries inside the call included), by app and action.",
    ["app", "action"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
LATENESS_SECONDS = Histogram(
    "calflow_step_lateness_seconds",
    "How long after its due time a timed step (a reminder, a follow-up) was started, on "
    "its first attempt, by app and action.",
    ["app", "action"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
)
REPLAY_ITEMS = Counter(
    "calflow_replay_items",
    "Replay items that ended, by provider and status (sent, skipped, failed, …).",
    ["provider", "status"],
)
OUTBOUND_ERRORS = Counter(
    "calflow_outbound_http_errors",
    "Failed calls to providers (each attempt), by provider and kind "
    "(timeout, network, rate_limited, server, auth, client).",
    ["provider", "kind"],
)
HTTP_REQUESTS = Counter(
    "calflow_http_requests",
    "HTTP requests answered by calflow serve, by route group, method and status.",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "calflow_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route group.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)

_GROUPS = ("hooks", "api", "mcp", "healthz", "metrics", "assets", "openapi.json")


def route_group(path: str) -> str:
    """The bounded route label of ``path``: its first segment when calflow serves it
    (``/hooks/int_…`` → ``hooks``), ``console`` for ``/``, else ``other``."""
    first = path.lstrip("/").split("/", 1)[0]
    if not first:
        return "console"
    return first if first in _GROUPS else "other"


def exposition(*extra: Collector) -> bytes:
    """Every metric in Prometheus' text format: this process's, or with
    ``PROMETHEUS_MULTIPROC_DIR`` set, every process's that writes there; then the
    ``extra`` collectors' (read at each scrape)."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    if extra:
        own = CollectorRegistry(auto_describe=False)
        for collector in extra:
            own.register(collector)
        text += generate_latest(own)
    return text
