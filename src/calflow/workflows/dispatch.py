"""The dispatcher: hands stored events to workflows, in the order they were stored.

It takes events whose ``dispatched_at`` is null (the inbox's hand-off), and for each:

- a stale event (see ``calflow.events.ordering``) starts nothing;
- a reschedule moves the active runs of the booking (a message wakes each run, which
  recomputes its due times) and starts the workflows triggered by ``rescheduled``
  that were not already following this booking;
- a cancel or decline tells the booking's active runs to stop (they end
  ``cancelled`` with the reason) and starts the workflows triggered by it;
- any other event starts the workflows whose trigger matches.

A run's id is derived from the event's dedupe key and the workflow, and DBOS starts a
workflow id once, so dispatching an event again after a crash starts nothing twice.
Only then is the event marked dispatched. On PostgreSQL one dispatcher at a time holds
an advisory lock, so events of one booking are handed over in order; the runs
themselves are spread over every worker by the DBOS queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from dbos import DBOS, SetWorkflowID
from sqlalchemy import Connection, select, text, update

from calflow.db.engine import write_transaction
from calflow.db.models import EventRow, IntegrationRow
from calflow.db.types import utcnow
from calflow.events.model import BookingEvent
from calflow.workflows.durable import TOPIC, follows_booking, run_workflow
from calflow.workflows.matching import matches
from calflow.workflows.runs import run_id_for
from calflow.workflows.services import Services

log = logging.getLogger("calflow.dispatch")
RUNS_QUEUE = "calflow-runs"
_LOCK_KEY = 7_246_001  # pg advisory lock id of the dispatcher
MOVING = ("rescheduled",)
STOPPING = ("cancelled", "declined", "checkout_expired")


class Dispatcher:
    def __init__(self, svc: Services, batch: int = 500) -> None:
        self.svc = svc
        self.batch = batch

    async def run_forever(self, interval: float = 0.25, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                handled = await self.dispatch_once()
            except Exception as exc:  # the loop must survive a database hiccup
                log.error("dispatch failed (will retry): %s: %s", type(exc).__name__, exc)
                handled = 0
            if handled < self.batch:  # caught up: wait, so batches stay large under load
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval)

    async def dispatch_once(self) -> int:
        """Dispatch one batch of events; returns how many were handled.

        Database work runs in threads: the event loop also serves webhooks.
        """
        engine = self.svc.store.engine
        conn = await asyncio.to_thread(engine.connect)
        try:
            pg = conn.dialect.name == "postgresql"
            if pg and not await asyncio.to_thread(_lock, conn, "SELECT pg_try_advisory_lock(:k)"):
                return 0
            try:
                return await self._batch(conn)
            finally:
                if pg:
                    await asyncio.to_thread(_lock, conn, "SELECT pg_advisory_unlock(:k)")
        finally:
            await asyncio.to_thread(conn.close)

    def _pending(self, conn: Connection) -> list[Any]:
        """The next undispatched events, without their (costly to parse) documents."""
        rows = conn.execute(
            select(EventRow.id, EventRow.kind, EventRow.ordering, EventRow.dedupe_key)
            .where(
                EventRow.workspace_id == self.svc.store.workspace_id,
                EventRow.dispatched_at.is_(None),
            )
            .order_by(EventRow.received_at, EventRow.id)
            .limit(self.batch)
        ).all()
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
        # one write per batch: dispatching again after a crash starts nothing twice
        with write_transaction(self.svc.store.engine) as conn:
            conn.execute(
                update(EventRow).where(EventRow.id.in_(ids)).values(dispatched_at=utcnow())
            )

    async def _batch(self, conn: Connection) -> int:
        rows = await asyncio.to_thread(self._pending, conn)
        if not rows:
            return 0
        workflows = await asyncio.to_thread(self.svc.workflows.list, True)
        kinds = {k for wf in workflows for k in wf.definition.trigger.kinds}
        kinds.update(MOVING, STOPPING)
        # only events some workflow could care about are read and parsed
        wanted = [r for r in rows if r.ordering != "stale" and r.kind in kinds]
        if wanted:
            docs = await asyncio.to_thread(self._documents, conn, [r.id for r in wanted])
            plan = await asyncio.to_thread(self._plan, wanted, docs, workflows)
            for event_id, dedupe_key, event, matched in plan:
                await self._dispatch(event_id, dedupe_key, event, matched)
        await asyncio.to_thread(self._done, [row.id for row in rows])
        return len(rows)

    @staticmethod
    def _plan(
        rows: list[Any], docs: dict[str, Any], workflows: list[Any]
    ) -> list[tuple[str, str, BookingEvent, list[Any]]]:
        """What each event needs (off the event loop: parsing and matching cost CPU)."""
        plan = []
        names = docs["names"]
        for row in rows:
            event = BookingEvent.from_dict(docs["data"][row.id])
            matched = []
            for wf in workflows:
                ok, problem = matches(wf.definition.trigger, event, names)
                if problem:
                    log.warning("workflow %s: trigger.when failed for %s: %s",
                                wf.name, row.id, problem)  # fmt: skip
                if ok:
                    matched.append(wf)
            if matched or event.kind in MOVING or event.kind in STOPPING:
                plan.append((row.id, row.dedupe_key, event, matched))
        return plan

    async def _dispatch(
        self, event_id: str, dedupe_key: str, event: BookingEvent, matched: list[Any]
    ) -> None:
        following: set[str] = set()
        if event.kind in MOVING:
            following = await self._move(event)
        elif event.kind in STOPPING:
            await self._stop(event)
        for wf in matched:
            if wf.id not in following:  # else its run for this booking moved with it
                await self._start(wf, event_id, dedupe_key, event)

    async def _start(self, wf: Any, event_id: str, dedupe_key: str, event: BookingEvent) -> None:
        run_id = run_id_for(self.svc.store.workspace_id, dedupe_key, wf.id)
        await asyncio.to_thread(
            self.svc.runs.create,
            run_id,
            workflow_id=wf.id,
            workflow_name=wf.name,
            workflow_version=wf.version,
            event_id=event_id,
            provider=event.provider,
            booking_uid=event.booking_uid,
        )
        queue = await DBOS.retrieve_queue_async(RUNS_QUEUE)
        if queue is None:
            raise RuntimeError(f"queue {RUNS_QUEUE} is not registered")
        with SetWorkflowID(run_id):
            await queue.enqueue_async(
                run_workflow, run_id, dict(wf.definition.source), event.to_dict(raw=False)
            )

    async def _move(self, event: BookingEvent) -> set[str]:
        """Tell the booking's active runs about the new time; returns their workflow ids."""
        old_uid = event.previous_uid or event.booking_uid
        runs = await asyncio.to_thread(self.svc.runs.active_for_booking, event.provider, old_uid)
        message = {"type": "rescheduled", "uid": event.booking_uid,
                   "start": _iso(event.start), "end": _iso(event.end),
                   "moved_at": _iso(event.received_at)}  # fmt: skip
        moved: set[str] = set()
        for run in runs:
            await DBOS.send_async(run.id, message, topic=TOPIC)
            if old_uid != event.booking_uid:
                await asyncio.to_thread(self.svc.runs.update, run.id, booking_uid=event.booking_uid)
            moved.add(run.workflow_id)
        return moved

    async def _stop(self, event: BookingEvent) -> None:
        runs = await asyncio.to_thread(
            self.svc.runs.active_for_booking, event.provider, event.booking_uid
        )
        reason = f"booking {event.kind}" + (f": {event.reason}" if event.reason else "")
        for run in runs:
            await DBOS.send_async(run.id, {"type": "cancelled", "reason": reason}, topic=TOPIC)


def _lock(conn: Connection, statement: str) -> bool:
    got = bool(conn.execute(text(statement), {"k": _LOCK_KEY}).scalar())
    conn.commit()
    return got


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


__all__ = ["RUNS_QUEUE", "Dispatcher", "follows_booking"]
