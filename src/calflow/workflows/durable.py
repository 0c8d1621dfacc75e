"""One run of one workflow for one event, as a DBOS workflow.

Every action call is a DBOS step (checkpointed: a step that finished is never sent
again after a crash); waits are durable (``DBOS.recv`` with a timeout, so a reschedule
or cancel message wakes the run early); retries sleep durably. The booking's stored
state (``booking_states``) is re-read before each step, so a run also follows a
reschedule or a cancel it was never told about.

The workflow's arguments are the definition and the event as they were when the run
started (JSON), so a recovered run replays exactly what it began with.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from dbos import DBOS

from calflow.errors import CalflowError, ConfigError, RetryableError, ValidationError
from calflow.events.model import BookingEvent
from calflow.events.ordering import ENDED, PHASES
from calflow.workflows import templates
from calflow.workflows.definition import END, StepDef, WorkflowDef, parse
from calflow.workflows.runs import mask
from calflow.workflows.services import services

TOPIC = "booking"
MAX_WAIT_S = 6 * 3600.0
"""A long wait is cut into chunks so the run re-reads the booking now and then."""
PAST_GRACE_S = 60.0
"""A step that was due more than this before calflow learned of its booking (or of the
booking's move) is skipped (``skip_if_past``)."""


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def due_time(step: dict[str, Any], booking: dict[str, Any]) -> datetime | None:
    """When ``step`` is due, or None for at once (an anchor the booking lacks: at once)."""
    anchor = step.get("anchor", "event")
    if anchor == "event":
        return None
    base = _dt(step.get("previous_at") if anchor == "previous" else booking.get(anchor))
    return base + timedelta(seconds=float(step.get("offset") or 0)) if base else None


@DBOS.step(name="calflow.mark")
async def _mark(run_id: str, values: dict[str, Any]) -> None:
    for key in ("next_due_at", "finished_at"):
        if isinstance(values.get(key), str):
            values[key] = _dt(values[key])
    await asyncio.to_thread(services().runs.update, run_id, **values)


@DBOS.step(name="calflow.end")
async def _end(run_id: str, step_id: str, record: dict[str, Any], values: dict[str, Any]) -> None:
    """Record a step that did not call its action (cancelled, skipped) and update the run."""
    svc = services()
    await asyncio.to_thread(svc.runs.record_step, run_id, step_id, 1, **record)
    await asyncio.to_thread(svc.runs.update, run_id, **values)


@DBOS.step(name="calflow.check")
async def _check(run_id: str, step: dict[str, Any], booking: dict[str, Any]) -> dict[str, Any]:
    """Where the run stands before a step: the booking's news, the time, the due time."""
    return await asyncio.to_thread(services().check, run_id, step, booking)


@DBOS.step(name="calflow.action")
async def _call(
    run_id: str, step: dict[str, Any], ctx: dict[str, Any], attempt: int
) -> dict[str, Any]:
    """Render the step's input, run its action, record the attempt; never raises."""
    return await services().call_action(run_id, step, ctx, attempt)


@DBOS.step(name="calflow.queue")
async def _queue_for(step: dict[str, Any], ctx: dict[str, Any]) -> str | None:
    """The integration's rate-limited queue for this step (None: call in the run)."""
    return await services().queue_for(step, ctx)


@DBOS.workflow(name="calflow.call")
async def call_workflow(
    run_id: str, step: dict[str, Any], ctx: dict[str, Any], attempt: int
) -> dict[str, Any]:
    """One action call, run from an integration's queue (its rate limit and concurrency)."""
    return await _call(run_id, step, ctx, attempt)


def _apply(message: Any, booking: dict[str, Any]) -> str | None:
    """Fold a booking message into ``booking``; returns the cancel reason for a cancel."""
    if not isinstance(message, dict):
        return None
    if message.get("type") == "cancelled":
        return str(message.get("reason") or "the booking was cancelled")
    for key in ("uid", "start", "end", "moved_at"):
        if message.get(key):
            booking[key] = message[key]
    return None


async def _wait(run_id: str, raw: dict[str, Any], booking: dict[str, Any], follows: bool) -> str:
    """Wait until the step is due: ``go``, ``past`` (due before the run got here) or
    ``cancelled:<reason>``. One checkpointed check per wake-up."""
    while True:
        seen = await _check(run_id, {**raw, "follows": follows}, dict(booking))
        if seen.get("ended"):
            return f"cancelled:{seen['ended']}"
        booking.update(seen["booking"])
        if seen["state"] != "wait":
            return str(seen["state"])
        message = await DBOS.recv_async(TOPIC, timeout_seconds=float(seen["wait_s"]))
        if follows:
            reason = _apply(message, booking)
            if reason is not None:
                return f"cancelled:{reason}"


async def _attempts(
    run_id: str, step: StepDef, raw: dict[str, Any], ctx: dict[str, Any], first: int = 1
) -> dict[str, Any]:
    """Call the step's action, retrying per its policy; attempts are numbered from
    ``first`` (a ``runs retry`` continues the numbering of the attempts before it)."""
    attempt = first
    limited = services().registry.app(step.app).rate_limit is not None
    queue_name = await _queue_for(raw, ctx) if limited else None
    while True:
        queue = await DBOS.retrieve_queue_async(queue_name) if queue_name else None
        if queue is not None:
            handle = await queue.enqueue_async(call_workflow, run_id, raw, ctx, attempt)
            result = await handle.get_result(polling_interval_sec=0.2)
        else:
            result = await _call(run_id, raw, ctx, attempt)
        if not result.get("retryable") or attempt - first + 1 >= step.retry.max_attempts:
            result["attempts"] = attempt
            return result
        delay = max(float(result.get("retry_after") or 0), step.retry.delay(attempt))
        finished = _dt(result.get("finished_at")) or datetime.now(UTC)
        retry_at = _iso(finished + timedelta(seconds=delay))
        await _mark(run_id, {"status": "waiting", "current_step": step.id, "next_due_at": retry_at})
        await DBOS.sleep_async(delay)
        attempt += 1


def follows_booking(kind: str) -> bool:
    """Runs started by a booking's (re)creation follow it; a cancel's own runs do not."""
    phase = PHASES.get(kind)
    return phase is not None and phase < ENDED


@DBOS.workflow(name="calflow.run")
async def run_workflow(
    run_id: str,
    definition: dict[str, Any],
    event: dict[str, Any],
    start_step: str | None = None,
    outputs: dict[str, Any] | None = None,
    first_attempt: int = 1,
) -> str:
    """Run ``definition``'s steps for ``event`` from ``start_step``; returns the final status."""
    wf = _parsed(definition)
    ev = BookingEvent.from_dict(event)
    follows = follows_booking(ev.kind)
    booking: dict[str, Any] = {
        "provider": ev.provider,
        "uid": ev.booking_uid,
        "start": _iso(ev.start),
        "end": _iso(ev.end),
    }
    done: dict[str, Any] = dict(outputs or {})
    index = wf.index(start_step) if start_step else 0
    previous_at = _iso(ev.received_at)
    while index < len(wf.steps):
        step = wf.steps[index]
        raw = {**_step_source(wf, step), "previous_at": previous_at,
               "received_at": _iso(ev.received_at)}  # fmt: skip
        waited = await _wait(run_id, raw, booking, follows)
        if waited.startswith("cancelled:"):
            reason = waited.split(":", 1)[1]
            await _end(run_id, step.id, {"status": "cancelled", "error": {"reason": reason}},
                       {"status": "cancelled", "cancel_reason": reason[:300],
                        "current_step": step.id})  # fmt: skip
            return "cancelled"
        if waited == "past" and step.skip_if_past:
            skipped = {"status": "skipped", "error": {"reason": "its time had already passed"}}
            await _end(run_id, step.id, skipped, {"current_step": step.id})
            index += 1
            continue
        ctx = {"event": event, "booking": booking, "steps": done}
        first = first_attempt if step.id == start_step else 1
        result = await _attempts(run_id, step, raw, ctx, first)
        done[step.id] = {"port": result["port"], "data": result.get("data"),
                         "success": result["success"], "code": result.get("code")}  # fmt: skip
        previous_at = result.get("finished_at") or previous_at
        target = step.on.get(result["port"])
        if target == END:
            break
        if target:
            index = wf.index(target)
            continue
        if not result["success"]:
            error = {"step": step.id, "code": result.get("code"), "message": result.get("message")}
            await _mark(run_id, {"status": "failed", "dead": 1, "error": error,
                                 "current_step": step.id})  # fmt: skip
            return "failed"
        index += 1
    await _mark(run_id, {"status": "succeeded", "current_step": None, "dead": 0, "error": None})
    return "succeeded"


_DEFINITIONS: dict[str, WorkflowDef] = {}


def _parsed(definition: dict[str, Any]) -> WorkflowDef:
    """The definition a run started with, validated once per process (not once per run)."""
    key = json.dumps(definition, sort_keys=True, default=str)
    found = _DEFINITIONS.get(key)
    if found is None:
        if len(_DEFINITIONS) > 256:
            _DEFINITIONS.clear()
        found = _DEFINITIONS[key] = parse(definition, services().registry)
    return found


def _step_source(wf: WorkflowDef, step: StepDef) -> dict[str, Any]:
    return {
        "id": step.id,
        "app": step.app,
        "action": step.action,
        "integration": step.integration,
        "input": dict(step.input),
        "anchor": step.at.anchor,
        "offset": step.at.offset,
    }


def failure(code: str, message: str, *, retryable: bool = False, **extra: Any) -> dict[str, Any]:
    """A step result for a failure that happened before or around the action."""
    return {"success": False, "port": "error", "code": code, "message": message,
            "data": None, "retryable": retryable, **extra}  # fmt: skip


def classify(exc: Exception) -> dict[str, Any]:
    """A step result for an error the runner raised."""
    if isinstance(exc, RetryableError):
        return failure(exc.code, exc.message, retryable=True, retry_after=exc.retry_after)
    if isinstance(exc, ValidationError):
        return failure(exc.code, str(exc), details=[e.to_dict() for e in exc.errors])
    if isinstance(exc, ConfigError | CalflowError):
        return failure(exc.code, exc.message)
    return failure("INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")


def render_input(step: dict[str, Any], ctx: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The step's rendered input and integration reference (``TemplateProblem`` on error)."""
    event = BookingEvent.from_dict(ctx["event"])
    booking = ctx["booking"]
    context = templates.context(event, ctx.get("steps"))
    context["booking"].update(
        uid=booking.get("uid"), start=_dt(booking.get("start")), end=_dt(booking.get("end"))
    )
    rendered = templates.render(step.get("input") or {}, context, f"steps.{step['id']}.input")
    integration = step.get("integration")
    if isinstance(integration, str):
        integration = templates.render(integration, context, f"steps.{step['id']}.integration")
    return rendered, integration


__all__ = ["classify", "failure", "mask", "render_input", "run_workflow"]
