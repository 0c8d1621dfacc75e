"""The dispatcher: hands stored events to workflows, each workspace's in the order they
were stored.

It takes events whose ``dispatched_at`` is null (the inbox's hand-off), the workspaces'
in turn (the first pending event of each workspace, then the second of each, and so on),
so a flood of one workspace's events does not queue another's behind it; and it gives
each workspace's events of a batch at most ``WORKSPACE_SLICE_S`` of matching
(``trigger.when`` is a template a tenant writes): what a workspace's slice did not reach
stays pending, in order, for the next batch. For each event:

- a stale event (see ``calflow.events.ordering``) starts nothing;
- a reschedule wakes the active runs of the booking (each follows the booking's stored
  state and recomputes its due times) and starts every workflow triggered by
  ``rescheduled``, except one whose run started by the booking's creation is still
  active (that run, a reminder, moved with the booking: it follows the booking once).
  A run a reschedule starts keeps that reschedule's times (``pinned``, see
  ``calflow.workflows.following``), so each reschedule's notice tells its own new time;
- a cancel or decline wakes the booking's active runs, which see it ended and stop
  (``cancelled``, with the reason), and starts the workflows triggered by it; a seat
  leaving (``attendee_cancelled``) wakes them too, and only the runs of that seat see
  their seat ended;
- any other event starts the workflows whose trigger matches;
- a change replayed from history (``BookingEvent.history``: ``calflow replay --into
  calflow`` without ``--run-workflows``) that occurred more than ``PAST_GRACE_S`` before
  calflow received it starts no workflow: an old cancellation sends no "Cancelled" email
  today. It still moves or ends the booking's runs, as the booking's state says.

Starting a run is inserting its row (queued, due now); a run's id is derived from the
event's dedupe key and the workflow, and the runs of a batch are inserted in the same
transaction that marks its events dispatched, so dispatching again after a crash
starts nothing twice. On PostgreSQL one dispatcher at a time holds an advisory lock,
so events of one booking are handed over in order; every worker's scheduler takes
the runs (``calflow.workflows.scheduler``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select, text, update

from calflow.db.engine import write_transaction
from calflow.db.models import EventRow, IntegrationRow
from calflow.db.types import utcnow
from calflow.events.model import BookingEvent
from calflow.retention import Pruner
from calflow.workflows.executor import initial_state
from calflow.workflows.following import MOVES
from calflow.workflows.matching import matches
from calflow.workflows.runs import RunStore, run_id_for
from calflow.workflows.services import Services
from calflow.workflows.steps import PAST_GRACE_S, follows_booking

log = logging.getLogger("calflow.dispatch")
_LOCK_KEY = 7_246_001  # pg advisory lock id of the dispatcher
MOVING = MOVES
STOPPING = ("cancelled", "declined", "checkout_expired", "attendee_cancelled")
WORKSPACE_SLICE_S = 0.2
"""A workspace's time for matching its events in one batch: how long another workspace's
slow triggers can hold back this one's events, per batch, at most (and one event's
``when``, whose render has its own deadline)."""


class Dispatcher:
    def __init__(
        self,
        svc: Services,
        batch: int = 500,
        on_runs: Callable[[], None] | None = None,
        lock_path: Path | None = None,
        slice_s: float = WORKSPACE_SLICE_S,
        pruner: Pruner | None = None,
    ) -> None:
        self.svc = svc
        self.pruner = pruner
        """Retention pruning, a few chunks after a batch when due (``calflow.retention``):
        done by the one process that dispatches, under its lock."""
        self.batch = batch
        self.slice_s = slice_s
        self.on_runs = on_runs
        self.lock_path = lock_path
        """SQLite: a file every dispatching process locks (PostgreSQL: an advisory lock)."""
        """Called when runs were created or woken (the local scheduler looks at once)."""
        self.behind = False
        """The last batch left events of a workspace for the next (its slice ran out)."""
        self._new: list[dict[str, Any]] = []
        self._versions: dict[tuple[str, int], Any] = {}

    async def run_forever(self, interval: float = 0.25, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                handled = await self.dispatch_once()
            except Exception as exc:  # the loop must survive a database hiccup
                log.error("dispatch failed (will retry): %s: %s", type(exc).__name__, exc)
                handled = 0
            if handled < self.batch and not self.behind:  # caught up: wait (batches stay large)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval)

    async def dispatch_once(self) -> int:
        """Dispatch one batch of events; returns how many were handled.

        Database work runs in threads: the event loop also serves webhooks.
        """
        engine = self.svc.store.engine
        if engine.dialect.name == "sqlite" and self.lock_path is not None:
            with _FileLock(self.lock_path) as held:
                return await self._dispatch_on(engine) if held else 0
        return await self._dispatch_on(engine)

    async def _dispatch_on(self, engine: Any) -> int:
        conn = await asyncio.to_thread(engine.connect)
        try:
            pg = conn.dialect.name == "postgresql"
            if pg and not await asyncio.to_thread(_lock, conn, "SELECT pg_try_advisory_lock(:k)"):
                return 0
            try:
                handled = await self._batch(conn)
                if self.pruner is not None and self.pruner.due():
                    await self._prune(self.pruner)
                return handled
            finally:
                if pg:
                    await asyncio.to_thread(_lock, conn, "SELECT pg_advisory_unlock(:k)")
        finally:
            await asyncio.to_thread(conn.close)

    async def _prune(self, pruner: Pruner) -> None:
        try:
            pruned = await asyncio.to_thread(pruner.step)
        except Exception as exc:  # retention must never stop dispatching
            log.error("pruning failed (will retry): %s: %s", type(exc).__name__, exc)
            return
        if pruned.total():
            log.info("pruned %s", {k: v for k, v in pruned.to_dict().items() if v and k != "done"})

    def _pending(self, conn: Connection) -> list[Any]:
        """The next undispatched events, the workspaces' in turn, without their (costly to
        parse) documents."""
        turn = func.row_number().over(
            partition_by=EventRow.workspace_id, order_by=(EventRow.received_at, EventRow.id)
        )
        ranked = (
            select(EventRow.id, EventRow.workspace_id, EventRow.kind, EventRow.ordering,
                   EventRow.dedupe_key, EventRow.received_at, turn.label("turn"))
            .where(EventRow.dispatched_at.is_(None))
            .subquery()
        )  # fmt: skip
        rows = conn.execute(
            select(ranked.c.id, ranked.c.workspace_id, ranked.c.kind, ranked.c.ordering,
                   ranked.c.dedupe_key)
            .where(ranked.c.turn <= self.batch)
            .order_by(ranked.c.turn, ranked.c.received_at, ranked.c.id)
            .limit(self.batch)
        ).all()  # fmt: skip
        conn.commit()
        return list(rows)

    def _documents(self, conn: Connection, ids: list[str]) -> dict[str, Any]:
        """The events that may start or change runs, parsed, and integration names."""
        found: dict[str, Any] = {}
        for start in range(0, len(ids), 200):
            query = select(EventRow.id, EventRow.data).where(
                EventRow.id.in_(ids[start : start + 200])
            )
            found.update(conn.execute(query).tuples().all())
        names = dict(conn.execute(select(IntegrationRow.id, IntegrationRow.name)).tuples().all())
        conn.commit()
        return {"data": found, "names": names}

    def _done(self, ids: list[str]) -> None:
        """Create the planned runs and mark the events dispatched, in one transaction: a
        crash before it commits dispatches them again, and run ids are derived, so nothing
        starts twice."""
        new, self._new = self._new, []
        versions, self._versions = self._versions, {}
        with write_transaction(self.svc.store.engine) as conn:
            for (workflow_id, version), source in versions.items():
                RunStore.keep_version(conn, workflow_id, version, source)
            RunStore.insert_new(conn, new)
            conn.execute(
                update(EventRow).where(EventRow.id.in_(ids)).values(dispatched_at=utcnow())
            )

    async def _batch(self, conn: Connection) -> int:
        rows = await asyncio.to_thread(self._pending, conn)
        if not rows:
            return 0
        spaces: dict[str, list[Any]] = {}
        for row in rows:  # each workspace's events in their order, with its own workflows
            spaces.setdefault(row.workspace_id, []).append(row)
        handled: list[str] = []
        self.behind = False
        for workspace_id, space_rows in spaces.items():
            svc = self.svc.workspace(workspace_id)
            workflows = await asyncio.to_thread(svc.workflows.list, True)
            kinds = {k for wf in workflows for k in wf.definition.trigger.kinds}
            kinds.update(MOVING, STOPPING)
            # only events some workflow could care about are read and parsed
            wanted = [r for r in space_rows if r.ordering != "stale" and r.kind in kinds]
            reached = len(space_rows)
            if wanted:
                docs = await asyncio.to_thread(self._documents, conn, [r.id for r in wanted])
                plan, matched_all = await asyncio.to_thread(
                    self._plan, wanted, docs, workflows, time.monotonic() + self.slice_s
                )
                if matched_all < len(wanted):  # the rest waits for the next batch, in order
                    reached = space_rows.index(wanted[matched_all])
                    self.behind = True
                for event_id, dedupe_key, event, matched in plan:
                    await self._dispatch(svc, event_id, dedupe_key, event, matched)
            handled.extend(row.id for row in space_rows[:reached])
        await asyncio.to_thread(self._done, handled)
        if self.on_runs is not None:
            self.on_runs()
        return len(handled)

    @staticmethod
    def _plan(
        rows: list[Any], docs: dict[str, Any], workflows: list[Any], until: float
    ) -> tuple[list[tuple[str, str, BookingEvent, list[Any]]], int]:
        """What each event needs (off the event loop: parsing and matching cost CPU), and
        how many of ``rows`` it got to before ``until`` (``time.monotonic``; at least one)."""
        plan: list[tuple[str, str, BookingEvent, list[Any]]] = []
        names = docs["names"]
        for done, row in enumerate(rows):
            if done and time.monotonic() >= until:
                return plan, done
            try:
                event = BookingEvent.from_dict(docs["data"][row.id])
            except (KeyError, TypeError, ValueError, OverflowError) as exc:  # never the batch
                log.error("event %s cannot be read, nothing starts: %s", row.id, exc)
                continue
            matched = []
            for wf in workflows if not _old_history(event) else ():
                ok, problem = matches(wf.definition.trigger, event, names)
                if problem:
                    log.warning("workflow %s: trigger.when failed for %s: %s",
                                wf.name, row.id, problem)  # fmt: skip
                if ok:
                    matched.append(wf)
            if matched or event.kind in MOVING or event.kind in STOPPING:
                plan.append((row.id, row.dedupe_key, event, matched))
        return plan, len(rows)

    async def _dispatch(
        self,
        svc: Services,
        event_id: str,
        dedupe_key: str,
        event: BookingEvent,
        matched: list[Any],
    ) -> None:
        following: set[str] = set()
        if event.kind in MOVING:
            following = await self._move(svc, event)
        elif event.kind in STOPPING:
            await self._stop(svc, event)
        for wf in matched:
            if wf.id not in following:  # else its run for this booking moved with it
                self._start(svc, wf, event_id, dedupe_key, event)

    def _start(
        self, svc: Services, wf: Any, event_id: str, dedupe_key: str, event: BookingEvent
    ) -> None:
        workspace_id = svc.store.workspace_id
        self._versions[(wf.id, wf.version)] = dict(wf.definition.source)
        state = initial_state(event)
        if event.kind in MOVING:  # about this one reschedule: keeps its times
            state["pinned"] = True
        self._new.append(RunStore.new_row(
            run_id_for(workspace_id, dedupe_key, wf.id), workspace_id, workflow_id=wf.id,
            workflow_name=wf.name, workflow_version=wf.version, event_id=event_id,
            provider=event.provider, booking_uid=event.booking_uid, state=state,
        ))  # fmt: skip

    def _flush(self) -> None:
        """Create the runs planned so far (a move or stop must see them)."""
        if not self._new:
            return
        new, self._new = self._new, []
        with write_transaction(self.svc.store.engine) as conn:
            for (workflow_id, version), source in self._versions.items():
                RunStore.keep_version(conn, workflow_id, version, source)
            RunStore.insert_new(conn, new)

    async def _move(self, svc: Services, event: BookingEvent) -> set[str]:
        """Wake the booking's active runs (they follow the booking's stored state and
        recompute their due times); returns the workflow ids of those that follow the
        booking (not the runs an earlier reschedule started: each reschedule has its own)."""
        await asyncio.to_thread(self._flush)
        old_uid = event.previous_uid or event.booking_uid
        runs = await asyncio.to_thread(svc.runs.active_for_booking, event.provider, old_uid)
        # a seat may move alone: each run finds its own way (and its uid) when it wakes
        moved = old_uid != event.booking_uid and not event.seat
        values = {"booking_uid": event.booking_uid} if moved else {}
        await asyncio.to_thread(svc.runs.wake, [r.id for r in runs], **values)
        return {run.workflow_id for run in runs if not (run.state or {}).get("pinned")}

    async def _stop(self, svc: Services, event: BookingEvent) -> None:
        """Wake the booking's active runs: they see it ended and stop with the reason."""
        await asyncio.to_thread(self._flush)
        runs = await asyncio.to_thread(
            svc.runs.active_for_booking, event.provider, event.booking_uid
        )
        await asyncio.to_thread(svc.runs.wake, [r.id for r in runs])


def _old_history(event: BookingEvent) -> bool:
    """A change replayed from history that happened more than the grace before calflow
    received it: it starts no workflow (``calflow replay --run-workflows`` to start them)."""
    age = (event.received_at - event.occurred_at).total_seconds()
    return event.history and age > PAST_GRACE_S


class _FileLock:
    """A non-blocking exclusive lock on a file (one dispatcher at a time on SQLite, where
    several worker processes may share one ``CALFLOW_HOME``); False if another holds it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> bool:
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            return False
        return True

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _lock(conn: Connection, statement: str) -> bool:
    got = bool(conn.execute(text(statement), {"k": _LOCK_KEY}).scalar())
    conn.commit()
    return got


__all__ = ["Dispatcher", "follows_booking"]
