"""What a replay is made of: options, items, outcomes and the summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Status = Literal["sent", "skipped", "failed"]
SENT: Status = "sent"
SKIPPED: Status = "skipped"
FAILED: Status = "failed"

DRY_RUN_REASON = "dry run: would send"
"""How a dry run settles each item it would send (counted as skipped)."""
DEFAULT_CONCURRENCY = 32
DEFAULT_ATTEMPTS = 5
DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ReplayOptions:
    """One replay: from an integration's history to a webhook URL or calflow's event bus.

    Exactly one of ``to`` (a URL) and ``into`` (``"calflow"``) names the target, except
    for a dry run, which needs neither. ``since``/``until`` select objects whose start
    time is in ``[since, until)``; ``kinds`` keeps only those kinds (normalized names
    such as ``created`` or the provider's own such as ``event.canceled``).
    """

    integration: str
    to: str | None = None
    into: str | None = None
    secret: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    kinds: tuple[str, ...] = ()
    concurrency: int = DEFAULT_CONCURRENCY
    rate: float | None = None
    dry_run: bool = False
    allow_private: bool = False
    limit: int | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_attempts: int = DEFAULT_ATTEMPTS
    signature: str = "provider"
    """How ``to`` deliveries are signed: ``provider`` (its own scheme) or ``standard``."""
    run_workflows: bool = False
    """With ``into``: let replayed changes start workflows as live ones do. Without it a
    change that happened more than the grace (60 s) before it was replayed starts none
    (it is marked ``history``; see ``calflow.workflows.dispatch``)."""

    def public(self) -> dict[str, Any]:
        """The options as stored with the job (never the secret)."""
        return {
            "integration": self.integration,
            "to": self.to,
            "into": self.into,
            "signed": bool(self.secret),
            "signature": self.signature,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "kinds": list(self.kinds),
            "concurrency": self.concurrency,
            "rate": self.rate,
            "dry_run": self.dry_run,
            "allow_private": self.allow_private,
            "limit": self.limit,
            "timeout_s": self.timeout_s,
            "max_attempts": self.max_attempts,
            "run_workflows": self.run_workflows,
        }


@dataclass(frozen=True)
class ReplayItem:
    """One provider object turned into one delivery.

    ``id`` is deterministic: the same object in the same kind always gets the same id,
    so a receiver (or calflow's inbox) can drop a second replay of it.
    """

    id: str
    object_id: str
    kind: str
    """The provider's own name: ``event.created``, ``BOOKING_CANCELLED``…"""
    start: datetime | None
    body: bytes
    """The delivery body exactly as the provider would send it (unsigned)."""
    page: int = 0


@dataclass(frozen=True)
class Outcome:
    """How one item ended."""

    item_id: str
    object_id: str
    kind: str
    status: Status
    reason: str = ""
    http_status: int | None = None
    attempts: int = 0
    latency_s: float = 0.0
    page: int = 0
    record: bool = True
    """False for outcomes not to store (already recorded earlier, dry run, not attempted)."""
    final: bool = True
    """False when the item is not settled (not attempted): the checkpoint must not pass it."""


@dataclass
class Counts:
    """Running totals of one run, with the reasons of skipped and failed items."""

    fetched: int = 0
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    skipped_reasons: Counter[str] = field(default_factory=Counter)
    failed_reasons: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: Outcome) -> None:
        if outcome.status == SENT:
            self.sent += 1
        elif outcome.status == SKIPPED:
            self.skipped += 1
            self.skipped_reasons[_reason_key(outcome.reason)] += 1
        else:
            self.failed += 1
            self.failed_reasons[_reason_key(outcome.reason)] += 1

    @property
    def done(self) -> int:
        return self.sent + self.skipped + self.failed

    def to_dict(self) -> dict[str, Any]:
        """The counts as a dry run's job keeps them (``would_send``: what it would send)."""
        return {
            "fetched": self.fetched,
            "would_send": self.skipped_reasons.get(_reason_key(DRY_RUN_REASON), 0),
            "sent": self.sent,
            "skipped": self.skipped,
            "failed": self.failed,
            "skipped_reasons": dict(self.skipped_reasons),
            "failed_reasons": dict(self.failed_reasons),
        }


def _reason_key(reason: str) -> str:
    """Reasons grouped for the summary (item-specific details cut at the first colon)."""
    return reason.split(": ", 1)[0] if reason else "unknown"


@dataclass
class ReplaySummary:
    """The result of one run of a replay job."""

    job: str
    status: str
    provider: str
    integration: str
    target: str
    dry_run: bool
    counts: Counts
    duration_s: float
    error: str | None = None
    job_totals: Mapping[str, int] | None = None
    timings: Mapping[str, float] = field(default_factory=dict)
    would_send: list[dict[str, Any]] = field(default_factory=list)
    history: bool = False
    """Published into calflow as history (no ``run_workflows``): old changes start no
    workflow."""

    @property
    def items_per_s(self) -> float:
        return self.counts.done / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.status == "completed" and self.counts.failed == 0

    def to_dict(self) -> dict[str, Any]:
        c = self.counts
        out: dict[str, Any] = {
            "job": self.job,
            "fetched": c.fetched,
            "sent": c.sent,
            "skipped": c.skipped,
            "failed": c.failed,
            "duration_s": round(self.duration_s, 4),
            "items_per_s": round(self.items_per_s, 1),
            "status": self.status,
            "provider": self.provider,
            "integration": self.integration,
            "target": self.target,
            "dry_run": self.dry_run,
            "skipped_reasons": dict(c.skipped_reasons),
            "failed_reasons": dict(c.failed_reasons),
            "timings": dict(self.timings),
        }
        if self.error:
            out["error"] = self.error
        if self.job_totals is not None:
            out["job_totals"] = dict(self.job_totals)
        if self.dry_run:
            out["would_send"] = self.would_send
        if self.history:
            out["history"] = True
        return out
