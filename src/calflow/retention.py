"""Retention: how long calflow keeps what it has done, and the pruning that enforces it.

Like n8n's execution pruning, on by default. Each kind of record has an age
(``CALFLOW_KEEP_*``, ``0`` or ``forever`` to keep it for good):

- finished runs (succeeded, failed, cancelled; runs of actions started from the API,
  the console or MCP too) and their step traces, by when they finished (30 days);
- events, by when they were received (30 days), once no run refers to them: a waiting
  run keeps its event, and an event's finished runs go first (a booking's ordering
  state, ``booking_states``, is kept: it holds what later deliveries are judged by);
- duplicate delivery records, by when they arrived (7 days; the event keeps their
  count, and the first delivery of each event stays as long as the event);
- replay jobs that are not running, with their items, by their last change (30 days);
- DBOS's records of finished batches, a day after they finished (by the engine's
  :class:`Pruner`, which has DBOS launched; a finished batch is never resumed).

Never pruned: runs that are queued, waiting or running, their events, events not yet
dispatched, bookings' ordering states, workflows, integrations, tokens.

:func:`prune` deletes in chunks of ``CHUNK`` rows, one short transaction each, so the
SQLite write lock is never held for long; ``calflow prune`` runs it by hand (with
``--older-than`` for one age for all, ``--dry-run`` to count only). In ``calflow serve``
and ``calflow worker`` the process that dispatches events prunes (:class:`Pruner`),
every ``CALFLOW_PRUNE_EVERY_S``, a few chunks per dispatch batch so events never wait
behind a long prune.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, delete, exists, false, func, select

from calflow.db.engine import write_transaction
from calflow.db.models import (
    EventDeliveryRow,
    EventRow,
    ReplayItemRow,
    ReplayJobRow,
    RunRow,
    RunStepRow,
)
from calflow.durations import DURATION_HINT, seconds
from calflow.settings import Settings

CHUNK = 500
DBOS_AGE_S = 86400.0
FINAL_RUNS = ("succeeded", "failed", "cancelled")
_FOREVER = ("0", "forever", "never")


def parse_age(text: str) -> float | None:
    """Seconds of ``30d``-style text; None for ``0``/``forever`` (keep for good)."""
    if text.strip().lower() in _FOREVER:
        return None
    try:
        age = seconds(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an age: {DURATION_HINT}, or 0/forever") from None
    return age or None


@dataclass(frozen=True)
class Ages:
    """How long each kind of record is kept, in seconds (None: for good)."""

    runs: float | None = 30 * 86400
    events: float | None = 30 * 86400
    deliveries: float | None = 7 * 86400
    replays: float | None = 30 * 86400

    @classmethod
    def from_settings(cls, settings: Settings) -> Ages:
        return cls(
            runs=parse_age(settings.keep_runs),
            events=parse_age(settings.keep_events),
            deliveries=parse_age(settings.keep_deliveries),
            replays=parse_age(settings.keep_replays),
        )

    @classmethod
    def every(cls, age: float) -> Ages:
        """One age for every kind (``calflow prune --older-than``)."""
        return cls(runs=age, events=age, deliveries=age, replays=age)


@dataclass
class Pruned:
    """Rows pruned (or, in a dry run, that would be), by table."""

    runs: int = 0
    run_steps: int = 0
    events: int = 0
    event_deliveries: int = 0
    replay_jobs: int = 0
    replay_items: int = 0
    dbos_workflows: int = 0
    """DBOS's records of finished batches (pruned by the engine's :class:`Pruner` only)."""
    done: bool = True
    """False when :func:`prune` stopped at its chunk budget with more to prune."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def total(self) -> int:
        return sum(v for k, v in asdict(self).items() if k != "done")


@dataclass
class _Kind:
    """One kind of record: which ids are due, and how to delete a chunk of them."""

    name: str
    age: float | None
    ids: Callable[[datetime], Any]
    drop: Callable[[Any, list[Any]], dict[str, int]]


def _run_is_due(cutoff: datetime | None) -> ColumnElement[bool]:
    if cutoff is None:
        return false()
    return and_(RunRow.status.in_(FINAL_RUNS), RunRow.finished_at < cutoff)


def _runs_due(cutoff: datetime) -> Any:
    return select(RunRow.id).where(_run_is_due(cutoff))


def _drop_runs(conn: Any, ids: list[Any]) -> dict[str, int]:
    steps = conn.execute(delete(RunStepRow).where(RunStepRow.run_id.in_(ids))).rowcount
    runs = conn.execute(delete(RunRow).where(RunRow.id.in_(ids))).rowcount
    return {"runs": runs, "run_steps": steps}


def _events_due(cutoff: datetime, runs_cutoff: datetime | None) -> Any:
    # a run that is itself due does not keep its event: it goes first (and a dry run
    # counts the event as going too)
    referred = exists().where(RunRow.event_id == EventRow.id, ~_run_is_due(runs_cutoff))
    return select(EventRow.id).where(
        EventRow.received_at < cutoff, EventRow.dispatched_at.is_not(None), ~referred
    )


def _drop_events(conn: Any, ids: list[Any]) -> dict[str, int]:
    where = EventDeliveryRow.event_id.in_(ids)
    deliveries = conn.execute(delete(EventDeliveryRow).where(where)).rowcount
    events = conn.execute(delete(EventRow).where(EventRow.id.in_(ids))).rowcount
    return {"events": events, "event_deliveries": deliveries}


def _deliveries_due(cutoff: datetime) -> Any:
    return select(EventDeliveryRow.id).where(
        EventDeliveryRow.duplicate == 1, EventDeliveryRow.received_at < cutoff
    )


def _drop_deliveries(conn: Any, ids: list[Any]) -> dict[str, int]:
    gone = conn.execute(delete(EventDeliveryRow).where(EventDeliveryRow.id.in_(ids))).rowcount
    return {"event_deliveries": gone}


def _replays_due(cutoff: datetime) -> Any:
    return select(ReplayJobRow.id).where(
        ReplayJobRow.status != "running", ReplayJobRow.updated_at < cutoff
    )


def _drop_replays(conn: Any, ids: list[Any]) -> dict[str, int]:
    items = conn.execute(delete(ReplayItemRow).where(ReplayItemRow.job_id.in_(ids))).rowcount
    jobs = conn.execute(delete(ReplayJobRow).where(ReplayJobRow.id.in_(ids))).rowcount
    return {"replay_jobs": jobs, "replay_items": items}


def _kinds(ages: Ages, now: datetime) -> list[_Kind]:
    # runs before events: an event is kept while a run refers to it
    runs_cutoff = None if ages.runs is None else now - timedelta(seconds=ages.runs)
    return [
        _Kind("runs", ages.runs, _runs_due, _drop_runs),
        _Kind("events", ages.events, lambda c: _events_due(c, runs_cutoff), _drop_events),
        _Kind("deliveries", ages.deliveries, _deliveries_due, _drop_deliveries),
        _Kind("replays", ages.replays, _replays_due, _drop_replays),
    ]


def prune(
    engine: Engine,
    ages: Ages,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    max_chunks: int | None = None,
) -> Pruned:
    """Delete (or with ``dry_run`` count) every record older than its age, in every
    workspace; at most ``max_chunks`` chunks of ``CHUNK`` rows when given (``done`` is
    then False if more is due)."""
    now = now or datetime.now(UTC)
    out = Pruned()
    chunks = 0
    for kind in _kinds(ages, now):
        if kind.age is None:
            continue
        due = kind.ids(now - timedelta(seconds=kind.age))
        if dry_run:
            _count_due(engine, kind, due, out)
            continue
        while True:
            if max_chunks is not None and chunks >= max_chunks:
                out.done = False
                return out
            with write_transaction(engine) as conn:
                ids = list(conn.execute(due.limit(CHUNK)).scalars())
                if ids:
                    for name, count in kind.drop(conn, ids).items():
                        setattr(out, name, getattr(out, name) + count)
            chunks += 1 if ids else 0  # a look that found nothing costs no chunk
            if len(ids) < CHUNK:
                break
    return out


def _count_due(engine: Engine, kind: _Kind, due: Any, out: Pruned) -> None:
    with engine.connect() as conn:
        count = int(conn.execute(select(func.count()).select_from(due.subquery())).scalar_one())
        if kind.name == "runs":
            steps = select(func.count()).where(RunStepRow.run_id.in_(due))
            out.run_steps += int(conn.execute(steps).scalar_one())
            out.runs += count
        elif kind.name == "events":
            rows = select(func.count()).where(EventDeliveryRow.event_id.in_(due))
            out.event_deliveries += int(conn.execute(rows).scalar_one())
            out.events += count
        elif kind.name == "deliveries":
            out.event_deliveries += count
        else:
            items = select(func.count()).where(ReplayItemRow.job_id.in_(due))
            out.replay_items += int(conn.execute(items).scalar_one())
            out.replay_jobs += count


def prune_dbos(age: float, *, now: datetime | None = None, limit: int = CHUNK) -> int:
    """Delete DBOS's records of batches that finished more than ``age`` seconds ago (at
    most ``limit``); answers how many. Needs DBOS launched in this process. A batch's
    record is what DBOS resumes after a crash: a finished one is never needed again."""
    from dbos import DBOS

    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=age)
    finished = DBOS.list_workflows(
        status=["SUCCESS", "ERROR", "CANCELLED"], completed_before=cutoff.isoformat(),
        limit=limit, load_input=False, load_output=False,
    )  # fmt: skip
    ids = [w.workflow_id for w in finished]
    if ids:
        DBOS.delete_workflows(ids)
    return len(ids)


@dataclass
class Pruner:
    """Pruning spread over the dispatcher's batches: when due, ``step`` prunes a few
    chunks and says whether more remain; the next round is ``every_s`` after the last
    one finished. With ``dbos``, DBOS's records of finished batches go too, after a day
    (or the runs' age, if shorter)."""

    engine: Engine
    ages: Ages
    every_s: float = 3600.0
    chunks_per_step: int = 4
    clock: Callable[[], float] = time.monotonic
    dbos: bool = False
    _next: float = field(default=0.0)
    last: Pruned | None = None

    def due(self) -> bool:
        return self.clock() >= self._next

    def step(self) -> Pruned:
        result = prune(self.engine, self.ages, max_chunks=self.chunks_per_step)
        if result.done and self.dbos:
            result.dbos_workflows = prune_dbos(min(self.ages.runs or DBOS_AGE_S, DBOS_AGE_S))
            result.done = result.dbos_workflows < CHUNK
        if result.done:
            self._next = self.clock() + self.every_s
        self.last = result
        return result


__all__ = ["CHUNK", "Ages", "Pruned", "Pruner", "parse_age", "prune", "prune_dbos"]
