"""Running one action, and a data fetcher's options, with an integration of the workspace.

- ``POST /api/v1/actions/{app}/{action}/run`` ``{"integration": id or name, "input":
  {…}}`` → ``{"port", "success", "data", "error": {"code", "message"} | null,
  "run_id", "duration_ms"}``. The call is recorded as a run (``GET /api/v1/runs/{run_id}``)
  and a booking it makes or changes is published to this workspace's event bus, like a
  booking made on the provider's own page. Invalid input is a 422 whose details name each
  field (``input.start``…); a provider's refusal is a result on the action's ports (200).
- ``POST /api/v1/fetchers/{app}/{fetcher}`` ``{"integration", "context": {…},
  "search"?}`` → ``{"options": [{"value", "label", …}]}``. A fetcher that fails is a
  422 (bad context), 502 (the provider refused) or 503 (try again), never a 500.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from calflow.api.deps import ApiRoute, Scope, ScopeDep
from calflow.api.errors import ERROR_RESPONSES, ApiError
from calflow.api.models import (
    ActionRun,
    ActionRunOut,
    FetchOut,
    FetchRequest,
    OptionOut,
    ResultError,
)
from calflow.errors import FieldError, InternalError, NotFoundError, ValidationError
from calflow.flowapp.app import App
from calflow.flowapp.model import Option
from calflow.integrations import Integration
from calflow.workflows.adhoc import run_action_recorded

router = APIRouter(route_class=ApiRoute, responses=ERROR_RESPONSES, tags=["actions"])


async def _integration(scope: Scope, app: App, ref: str) -> Integration:
    try:
        found = await asyncio.to_thread(scope.integrations.get, ref)
    except NotFoundError as exc:
        raise ApiError(
            404, "NOT_FOUND", exc.message, [FieldError("integration", exc.message)]
        ) from None
    if found.app_key != app.key:
        message = f"integration {found.name!r} is a {found.app_key} integration, not {app.key}"
        raise ValidationError(message, [FieldError("integration", message, "app")])
    return found


def _prefixed(exc: ValidationError, prefix: str) -> ValidationError:
    errors = [
        FieldError(
            e.path
            if e.path == prefix or e.path.startswith(f"{prefix}.")
            else f"{prefix}.{e.path}"
            if e.path
            else prefix,
            e.message,
            e.rule,
        )
        for e in exc.errors
    ]
    return ValidationError(exc.message, errors or [FieldError(prefix, exc.message)])


@router.post("/actions/{app}/{action}/run")
async def run_action(scope: ScopeDep, app: str, action: str, body: ActionRun) -> ActionRunOut:
    """Run one action now, recorded as a run of this workspace."""
    found_app = scope.state.registry.app(app)
    action_cls = found_app.action(action)
    integration = await _integration(scope, found_app, body.integration)
    try:
        result, run_id = await run_action_recorded(
            scope.runner, scope.workspace_id, integration, action_cls.key, body.input, source="api"
        )
    except ValidationError as exc:
        raise _prefixed(exc, "input") from None
    error = None
    if not result.success or result.code:
        error = ResultError(code=result.code, message=result.message)
    return ActionRunOut(
        port=result.port,
        success=result.success,
        data=result.data,
        error=error,
        run_id=run_id,
        duration_ms=result.meta.get("duration_ms"),
    )


def _matches(option: Option, search: str) -> bool:
    needle = search.casefold()
    return needle in option.label.casefold() or needle in str(option.value).casefold()


@router.post("/fetchers/{app}/{fetcher}")
async def fetch_options(scope: ScopeDep, app: str, fetcher: str, body: FetchRequest) -> FetchOut:
    """The options a form field offers (``x-fetcher``), given the fields it depends on."""
    found_app = scope.state.registry.app(app)
    fetcher_cls = found_app.fetcher(fetcher)
    integration = None
    if body.integration is None and any(f.required for f in found_app.credential_fields):
        raise ValidationError(
            f"fetchers of {found_app.key} need an integration",
            [FieldError("integration", "is required", "required")],
        )
    if body.integration is not None:
        integration = await _integration(scope, found_app, body.integration)
    try:
        options = await scope.runner.fetch_options(
            found_app.key, fetcher_cls.key, integration, body.context
        )
    except ValidationError as exc:
        raise _prefixed(exc, "context") from None
    except InternalError as exc:
        raise ApiError(502, "FETCHER_FAILED", exc.message) from None
    if body.search:
        options = [o for o in options if _matches(o, body.search)]
    return FetchOut(options=[OptionOut(**o.to_dict()) for o in options])
