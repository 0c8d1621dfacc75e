"""Durable execution of runs: batches of due runs as DBOS workflows, and step helpers.

A run is a row (``runs``) that says which step it is at and when that step is due; the
scheduler takes due runs in batches under a lease and runs each batch as one DBOS
workflow (``calflow.batch``), so a batch cut off by a crash is resumed when the worker
starts again. Exactly-once per action call comes from calflow's own rows: the intent
(``run_steps`` row ``started``) is written before the call and the outcome after it,
so a re-executed batch skips a recorded outcome and reconciles a cut-off call
(``Action.reconcile``) instead of sending twice.

Measured on a 2-core machine, one DBOS workflow per run with checkpointed steps cost
12-18 ms of CPU per run, which capped the engine near 40 runs/s; a batch costs DBOS
the same as one run (``bench/RESULTS.md``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from dbos import DBOS

from calflow.errors import CalflowError, ConfigError, RetryableError, ValidationError
from calflow.events.model import BookingEvent
from calflow.events.ordering import ENDED, SEAT_PHASES
from calflow.workflows import templates
from calflow.workflows.definition import StepDef, WorkflowDef, parse
from calflow.workflows.runs import mask
from calflow.workflows.services import services

PAST_GRACE_S = 60.0
"""A step that was due more than this before calflow learned of its booking (or of the
booking's move) is skipped (``skip_if_past``)."""


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def parse_dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def due_time(step: dict[str, Any], booking: dict[str, Any]) -> datetime | None:
    """When ``step`` is due, or None for at once (an anchor the booking lacks: at once)."""
    anchor = step.get("anchor", "event")
    if anchor == "event":
        return None
    base = parse_dt(step.get("previous_at") if anchor == "previous" else booking.get(anchor))
    if base is None:
        return None
    try:
        return base + timedelta(seconds=float(step.get("offset") or 0))
    except (OverflowError, ValueError):  # past year 9999: a time that never comes
        return NEVER


NEVER = datetime(9999, 12, 31, tzinfo=UTC)
"""The due time of a step whose offset lands beyond what a date can hold."""


def follows_booking(kind: str) -> bool:
    """Runs started by a booking's (or a seat's) (re)creation follow it; a cancel's own
    runs do not."""
    phase = SEAT_PHASES.get(kind)
    return phase is not None and phase < ENDED


@DBOS.step(name="calflow.execute")
async def _execute(owner: str, run_ids: list[str]) -> dict[str, int]:
    """Advance every run of the batch that ``owner`` still holds; returns counts by status.

    Re-executed as a whole if the process dies inside it: steps whose outcome was
    recorded are not called again, and a call cut off mid-way is reconciled first."""
    from calflow.workflows.executor import execute_batch

    return await execute_batch(services(), owner, run_ids)


@DBOS.workflow(name="calflow.batch")
async def batch_workflow(owner: str, run_ids: list[str]) -> dict[str, int]:
    """A batch of due runs taken by one worker (see ``calflow.workflows.scheduler``)."""
    return await _execute(owner, run_ids)


_DEFINITIONS: dict[str, WorkflowDef] = {}


def parsed(definition: dict[str, Any]) -> WorkflowDef:
    """The definition a run started with, validated once per process (not once per run)."""
    key = json.dumps(definition, sort_keys=True, default=str)
    found = _DEFINITIONS.get(key)
    if found is None:
        if len(_DEFINITIONS) > 256:
            _DEFINITIONS.clear()
        found = _DEFINITIONS[key] = parse(definition, services().registry)
    return found


def step_source(wf: WorkflowDef, step: StepDef) -> dict[str, Any]:
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
        uid=booking.get("uid"),
        start=parse_dt(booking.get("start")),
        end=parse_dt(booking.get("end")),
    )
    rendered = templates.render(step.get("input") or {}, context, f"steps.{step['id']}.input")
    integration = step.get("integration")
    if isinstance(integration, str):
        integration = templates.render(integration, context, f"steps.{step['id']}.integration")
    return rendered, integration


__all__ = ["batch_workflow", "classify", "failure", "mask", "render_input"]
