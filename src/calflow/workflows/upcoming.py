"""What a run will do next: its remaining steps and when each is due (``runs show``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from calflow.errors import NotFoundError
from calflow.events.inbox import Inbox
from calflow.workflows.runs import ACTIVE
from calflow.workflows.store import WorkflowStore


def upcoming(run: dict[str, Any], workflows: WorkflowStore, inbox: Inbox) -> list[dict[str, Any]]:
    """The steps still ahead of an active run, in order, with their due time when it is
    known (booking-relative steps follow the booking's current start and end; a step
    timed after the previous one is due only once that one is done). Routes may skip
    some of them."""
    if run["status"] not in ACTIVE:
        return []
    try:
        definition = workflows.get(run["workflow_id"]).definition
    except NotFoundError:
        return []
    ids = [s.id for s in definition.steps]
    current = run.get("current_step") or ids[0]
    if current not in ids:
        return []
    start, end = _booking_times(run, inbox)
    out = []
    for step in definition.steps[ids.index(current) :]:
        due: str | None = None
        anchor = {"start": start, "end": end}.get(step.at.anchor)
        if step.id == current and run.get("next_due_at"):
            due = run["next_due_at"]
        elif anchor is not None:
            due = (anchor + timedelta(seconds=step.at.offset)).isoformat()
        out.append({"step": step.id, "action": f"{step.app}.{step.action}",
                    "at": step.at.text, "due_at": due})  # fmt: skip
    return out


def _booking_times(run: dict[str, Any], inbox: Inbox) -> tuple[Any, Any]:
    state = inbox.booking_state(run["provider"], run["booking_uid"])
    if state is not None and state.start is not None:
        return state.start, state.end
    try:
        event = inbox.get(run["event_id"])["event"]
    except NotFoundError:
        return None, None
    from calflow.events.model import BookingEvent

    parsed = BookingEvent.from_dict(event)
    return parsed.start, parsed.end
