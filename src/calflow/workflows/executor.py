"""Advancing runs: each taken run goes as far as it can, then says where it stands.

A run's row holds its place between batches (``runs.state``): the index of the step it
is at, that step's attempt number, the booking as the run knows it (uid, start, end,
when it last moved) and the outputs of the steps done. Advancing a run:

1. before each step, follows the booking's stored state (a run started by a booking's
   creation follows reschedules, including Cal.com's new uid, and ends ``cancelled``
   with the reason when the booking is cancelled);
2. if the step is due later, the run waits (``waiting`` until ``next_due_at``; a
   reschedule or cancel makes it due at once so it looks again);
3. a step whose time passed before calflow learned of the booking is skipped
   (``skip_if_past``; see ``calflow.workflows.following``) and goes where the action's
   success port routes, or to its ``on.skipped`` route; one that fell due while the
   engine was down is sent late;
4. otherwise the action is called through ``Services.call_action`` (intent row, call,
   outcome row: exactly once across crashes); a retryable failure waits for its retry,
   the port picks the next step, and a failure with no route dead-letters the run.

Nothing here writes the run row itself: each run's new place is stored as soon as the
run stops advancing, grouped with the others that finished meanwhile
(``calflow.workflows.saving``), so one slow provider call delays only its own run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from calflow.db.models import EventRow
from calflow.events.model import BookingEvent
from calflow.flowapp.model import SKIPPED_ROUTE as SKIPPED
from calflow.workflows.definition import END, WorkflowDef
from calflow.workflows.following import follow, skip_reason
from calflow.workflows.observe import run_stopped, step_late, step_outcome
from calflow.workflows.saving import Saver
from calflow.workflows.services import BATCH_CACHE, Services
from calflow.workflows.steplog import histories
from calflow.workflows.steps import (
    due_time,
    follows_booking,
    iso,
    parse_dt,
    parsed,
    step_source,
)

log = logging.getLogger("calflow.executor")
RUN_CONCURRENCY = 64
"""Runs of one batch advanced at once (action calls are bounded per integration too)."""


def initial_state(event: BookingEvent) -> dict[str, Any]:
    """Where a new run for ``event`` starts: its first step, attempt 1."""
    return {
        "index": 0,
        "attempt": 1,
        "first": 1,
        "follows": follows_booking(event.kind),
        "booking": {"provider": event.provider, "uid": event.booking_uid,
                    "start": iso(event.start), "end": iso(event.end), "seat": event.seat},
        "outputs": {},
        "previous_at": iso(event.received_at),
        "received_at": iso(event.received_at),
    }  # fmt: skip


async def execute_batch(svc: Services, owner: str, run_ids: list[str]) -> dict[str, int]:
    """Advance the runs of ``run_ids`` still held by the batch ``owner``
    (``<worker>#<batch>``); store where each stands."""
    rows = await asyncio.to_thread(svc.runs.held, owner, run_ids, svc.lease_s)
    if not rows:
        return {}
    events = await asyncio.to_thread(_events, svc, [r.event_id for r in rows])
    past = await asyncio.to_thread(histories, svc.store.engine, [r.id for r in rows])
    BATCH_CACHE.set({})
    gate = asyncio.Semaphore(RUN_CONCURRENCY)
    saver = Saver(svc.runs, owner)

    async def one(row: Any) -> str:
        async with gate:
            try:
                space = svc.workspace(row.workspace_id)
                found = events.get(row.event_id)
                values = await advance(space, row, found, past.get(row.id, []))
            except Exception as exc:  # a bug must not stall the batch: retry the run later
                log.exception("run %s could not advance", row.id)
                due = datetime.now(UTC) + timedelta(seconds=30)
                error = {"code": "INTERNAL_ERROR", "message": f"{type(exc).__name__}: {exc}"}
                values = {"status": "waiting", "next_due_at": due, "error": error}
        saver.add(row, values)  # stored now: a slow run of the batch holds only itself
        run_stopped(row, str(values["status"]))
        return str(values["status"])

    async def keep_leases() -> None:  # a slow provider must not let another worker take them
        while True:
            await asyncio.sleep(svc.lease_s / 3)
            ids = [r.id for r in rows if r.id not in saver.saved]
            await asyncio.to_thread(svc.runs.extend, owner, ids, svc.lease_s)

    keeper = asyncio.create_task(keep_leases())
    try:
        statuses = await asyncio.gather(*(one(r) for r in rows))
        await saver.close()
    finally:
        saver.cancel()
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
    return dict(Counter(statuses))


def _events(svc: Services, ids: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    unique = sorted(set(ids))
    with Session(svc.store.engine) as session:
        for start in range(0, len(unique), 500):
            query = select(EventRow.id, EventRow.data).where(
                EventRow.id.in_(unique[start : start + 500])
            )
            found.update((i, d) for i, d in session.execute(query).tuples())
    return found


async def _definition(svc: Services, row: Any) -> WorkflowDef:
    source = _VERSIONS.get((row.workflow_id, row.workflow_version))
    if source is None:
        source = await asyncio.to_thread(svc.runs.version, row.workflow_id, row.workflow_version)
        if source is None:
            raise LookupError(f"workflow {row.workflow_id} v{row.workflow_version} is not stored")
        if len(_VERSIONS) > 512:
            _VERSIONS.clear()
        _VERSIONS[(row.workflow_id, row.workflow_version)] = source
    return parsed(source, svc.registry)


_VERSIONS: dict[tuple[str, int], dict[str, Any]] = {}


async def advance(
    svc: Services, row: Any, event: dict[str, Any] | None, history: list[Any]
) -> dict[str, Any]:
    """Run ``row`` (a ``runs`` row) as far as it goes now; returns the run's new values.
    ``history``: the
    run's step rows as the batch began (what a cut-off execution left)."""
    if event is None:
        error = {"code": "EVENT_MISSING", "message": f"event {row.event_id} is gone"}
        return {"status": "failed", "dead": 1, "error": error}
    wf = await _definition(svc, row)
    st: dict[str, Any] = dict(row.state or {})
    booking: dict[str, Any] = dict(st.get("booking") or {})
    outputs: dict[str, Any] = dict(st.get("outputs") or {})
    index = int(st.get("index", 0))
    attempt = int(st.get("attempt", 1))
    first = int(st.get("first", 1))

    def place(**values: Any) -> dict[str, Any]:
        state = {**st, "index": index, "attempt": attempt, "first": first,
                 "booking": booking, "outputs": outputs}  # fmt: skip
        step_id = wf.steps[index].id if index < len(wf.steps) else None
        return {"current_step": step_id, "state": state, "booking_uid": booking.get("uid")
                or row.booking_uid, **values}  # fmt: skip

    while index < len(wf.steps):
        step = wf.steps[index]
        raw = {**step_source(wf, step), "previous_at": st.get("previous_at"),
               "received_at": st.get("received_at")}  # fmt: skip
        moved_to = None
        if st.get("follows"):
            news = await asyncio.to_thread(
                svc.booking_news, str(booking.get("provider") or row.provider), booking
            )
            if news.get("ended"):
                reason = str(news["ended"])
                await asyncio.to_thread(svc.runs.record_step, row.id, step.id, 1,
                                        status="cancelled", error={"reason": reason})  # fmt: skip
                return place(status="cancelled", cancel_reason=reason[:300])
            moved_to = follow(st, booking, news)
        due = due_time(raw, booking)
        now = datetime.now(UTC)
        # "Past" is judged against when calflow learned of the booking (or of its move),
        # not against when the run got here: a reminder that fell due while the engine
        # was down or busy is sent late, one that was due before the booking is skipped.
        why = skip_reason(step, due, booking, st, moved_to)
        if why is None and due is not None and now < due:
            return place(status="waiting", next_due_at=due, error=None)
        if why is not None:  # skipped goes where success would (or on.skipped)
            target = step.after_skip(svc.registry.action(step.app, step.action).success_port())
            nxt = len(wf.steps) if target == END else wf.index(target) if target else index + 1
            await asyncio.to_thread(
                svc.runs.record_step, row.id, step.id, 1, status="skipped", port=SKIPPED,
                output={"next": wf.steps[nxt].id if nxt < len(wf.steps) else END},
                error=why, due_at=due,
            )  # fmt: skip
            outputs[step.id] = {"port": SKIPPED, "data": None, "success": True, "code": None}
            step_outcome(row, wf, step, {"port": SKIPPED}, attempt, None)
            index, attempt, first = nxt, 1, 1
            continue
        ctx = {"event": event, "booking": booking, "steps": outputs}
        if due is not None and attempt == first:
            step_late(step, (now - due).total_seconds())
        called = time.perf_counter()
        result = await svc.call_action(row.id, raw, ctx, attempt, history)
        step_outcome(row, wf, step, result, attempt, time.perf_counter() - called)
        if result.get("throttled") is not None:  # the integration's rate limit: wait a turn
            wake = now + timedelta(seconds=float(result["throttled"]))
            return place(status="waiting", next_due_at=wake)
        if result.get("retryable") and attempt - first + 1 < step.retry.max_attempts:
            delay = max(float(result.get("retry_after") or 0), step.retry.delay(attempt))
            finished = parse_dt(result.get("finished_at")) or now
            attempt += 1
            return place(status="waiting", next_due_at=finished + timedelta(seconds=delay))
        outputs[step.id] = {"port": result["port"], "data": result.get("data"),
                            "success": result["success"], "code": result.get("code")}  # fmt: skip
        st["previous_at"] = result.get("finished_at") or st.get("previous_at")
        target = step.on.get(result["port"])
        if target == END:
            index = len(wf.steps)
            break
        if target:
            index, attempt, first = wf.index(target), 1, 1
            continue
        if not result["success"]:
            failed = {"step": step.id, "code": result.get("code"), "message": result.get("message")}
            return place(status="failed", dead=1, error=failed)
        index, attempt, first = index + 1, 1, 1
    values = place(status="succeeded", dead=0, error=None)
    values["current_step"] = None
    return values


__all__ = ["advance", "execute_batch", "initial_state"]
