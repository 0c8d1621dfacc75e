"""Booking events and workflow runs of the caller's workspace.

- ``GET /api/v1/events?kind=&provider=&booking_uid=&integration=&since=&until=&limit=
  &cursor=`` → ``{"items": [...], "next_cursor": str | null}``, newest first; ``since``
  and ``until`` take an ISO date or time or an age (``7d``, ``12h``); ``integration``
  an id or a name. ``GET /api/v1/events/{id}``: one event with its raw payload and
  every delivery that mapped to it. Documents are answered through
  ``calflow.server.bodies.readable``: an event stored before the receiver checked bodies
  (a lone surrogate, ``NaN``, nesting the serializer refuses) shows with those values
  replaced, instead of failing the whole page.
- ``GET /api/v1/runs?workflow=&status=&booking_uid=&dead=&limit=&cursor=`` (same page
  shape) and ``GET /api/v1/runs/{id}``: the document of ``calflow runs show --json``,
  with every step attempt and the steps still ahead. ``POST /api/v1/runs/{id}/retry``
  re-runs a failed (dead-lettered) run from its failed step (409 for other runs).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query

from calflow.api import pagination
from calflow.api.deps import ApiRoute, Scope, ScopeDep
from calflow.api.errors import ERROR_RESPONSES, ApiError
from calflow.api.models import (
    EventDetail,
    EventOut,
    EventPage,
    RetryOut,
    RunDetail,
    RunOut,
    RunPage,
)
from calflow.errors import ConfigError, NotFoundError
from calflow.replay.timespec import parse_when
from calflow.server.bodies import readable
from calflow.workflows.upcoming import upcoming

router = APIRouter(route_class=ApiRoute, responses=ERROR_RESPONSES)

Text = Annotated[str | None, Query(max_length=200)]
Limit = Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT)]
Cursor = Annotated[
    str | None, Query(max_length=1000, description="next_cursor of the previous page")
]


def _integration_id(scope: Scope, ref: str | None) -> str | None:
    if not ref:
        return None
    try:
        return scope.integrations.get(ref).id
    except NotFoundError:
        return ref  # an integration since deleted: its events keep its id


@router.get("/events", tags=["events"])
def list_events(
    scope: ScopeDep,
    kind: Text = None,
    provider: Text = None,
    booking_uid: Text = None,
    integration: Text = None,
    since: Annotated[str | None, Query(max_length=64)] = None,
    until: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = pagination.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> EventPage:
    """Events, newest first, a page at a time."""
    rows = scope.inbox.list(
        kind=kind,
        provider=provider,
        booking_uid=booking_uid,
        integration_id=_integration_id(scope, integration),
        since=parse_when(since, "since"),
        until=parse_when(until, "until"),
        before=pagination.decode(cursor),
        limit=limit + 1,
    )
    items, next_cursor = pagination.page(rows, limit, "received_at")
    return EventPage(items=[EventOut(**readable(r)) for r in items], next_cursor=next_cursor)


@router.get("/events/{event_id}", tags=["events"])
def get_event(scope: ScopeDep, event_id: str) -> EventDetail:
    """One event with its raw payload and delivery history."""
    return EventDetail(**readable(scope.inbox.get(event_id)))


@router.get("/runs", tags=["runs"])
def list_runs(
    scope: ScopeDep,
    workflow: Text = None,
    status: Text = None,
    booking_uid: Text = None,
    dead: bool | None = None,
    limit: Limit = pagination.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> RunPage:
    """Runs, newest first, a page at a time (``dead=true``: the dead-letter list)."""
    rows = scope.runs.list(
        workflow=workflow,
        status=status,
        booking_uid=booking_uid,
        dead=dead,
        after=pagination.decode(cursor),
        limit=limit + 1,
    )
    items, next_cursor = pagination.page(rows, limit, "created_at")
    return RunPage(items=[RunOut(**r) for r in items], next_cursor=next_cursor)


@router.get("/runs/{run_id}", tags=["runs"])
def get_run(scope: ScopeDep, run_id: str) -> RunDetail:
    """One run: every step attempt and the steps still ahead with their due times."""
    data = scope.runs.get(run_id)
    data["upcoming"] = upcoming(data, scope.workflows, scope.inbox)
    return RunDetail(**data)


@router.post("/runs/{run_id}/retry", tags=["runs"])
async def retry(scope: ScopeDep, run_id: str) -> RetryOut:
    """Re-run a failed run from the step that failed, with the workflow as it is now."""
    from calflow.workflows.retry import retry_run

    await asyncio.to_thread(scope.runs.row, run_id)  # 404 before anything else
    try:
        data = await asyncio.to_thread(retry_run, run_id, scope.integrations, scope.state.settings)
    except ConfigError as exc:
        if isinstance(exc, NotFoundError):
            raise
        raise ApiError(409, "CONFLICT", exc.message) from None
    return RetryOut(**data)
