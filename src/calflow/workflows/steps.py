"""Pure helpers of a run's steps: due times, the step's source, rendered input, results.

Nothing here touches DBOS or the stores: the executor (``calflow.workflows.executor``),
the dispatcher and ``Services.call_action`` share these, and the DBOS workflow
(``calflow.workflows.durable``) only wraps the executor.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from calflow.errors import CalflowError, ConfigError, RetryableError, ValidationError
from calflow.events.model import BookingEvent
from calflow.events.ordering import ENDED, SEAT_PHASES
from calflow.flowapp.registry import Registry
from calflow.workflows import templates
from calflow.workflows.definition import StepDef, WorkflowDef, parse

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


_DEFINITIONS: dict[str, WorkflowDef] = {}


def parsed(definition: dict[str, Any], registry: Registry) -> WorkflowDef:
    """The definition a run started with, validated once per process (not once per run)."""
    key = json.dumps(definition, sort_keys=True, default=str)
    found = _DEFINITIONS.get(key)
    if found is None:
        if len(_DEFINITIONS) > 256:
            _DEFINITIONS.clear()
        found = _DEFINITIONS[key] = parse(definition, registry)
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


__all__ = [
    "NEVER",
    "PAST_GRACE_S",
    "classify",
    "due_time",
    "failure",
    "follows_booking",
    "iso",
    "parse_dt",
    "parsed",
    "render_input",
    "step_source",
]
