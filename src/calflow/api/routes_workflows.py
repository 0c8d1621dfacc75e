"""Workflows of the caller's workspace: the same definition documents as the files
``calflow workflows apply`` reads.

- ``GET /api/v1/workflows``; ``POST /api/v1/workflows`` creates one (409 if the name
  is taken); ``GET``/``PUT``/``DELETE /api/v1/workflows/{id or name}``; PUT replaces the
  definition (a new version; the name stays). DELETE cancels the workflow's unfinished
  runs with the reason "workflow deleted" (``?keep_runs=true`` lets them go on) and
  answers ``{"id", "deleted", "runs_cancelled", "runs_kept"}``; past runs stay visible.
- ``POST /api/v1/workflows/{id}/enable`` and ``…/disable``: the workflow plus
  ``runs_waiting``, its runs already started that are not finished (disabling stops new
  runs only: those keep waiting and run when due).
- ``POST /api/v1/workflows/validate``: ``{"valid", "name", "errors": [{"field",
  "message"}], "warnings": [...]}`` without saving (an editor's check as you type).
- ``GET /api/v1/schemas/workflow``: the JSON Schema of a definition.
Bodies are JSON, or YAML text with ``Content-Type: application/yaml`` (or
``text/yaml``). An invalid definition is a 422 whose details name each problem: the
checks of ``calflow workflows apply`` (:meth:`WorkflowStore.check`), the integrations
its steps name included. ``?allow_missing_integrations=true`` (POST, PUT, validate)
saves one whose integrations do not exist yet, and returns them as ``warnings``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from calflow.api.deps import ApiRoute, Scope, ScopeDep
from calflow.api.errors import ERROR_RESPONSES, ApiError
from calflow.api.models import (
    Validation,
    WorkflowDeleted,
    WorkflowList,
    WorkflowOut,
    WorkflowSaved,
    WorkflowToggled,
)
from calflow.errors import CalflowError, FieldError, NotFoundError, ValidationError
from calflow.workflows import documents, lifecycle
from calflow.workflows.definition import load_text, schema
from calflow.workflows.store import StoredWorkflow

log = logging.getLogger("calflow.api")
router = APIRouter(route_class=ApiRoute, responses=ERROR_RESPONSES, tags=["workflows"])

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
DOCUMENT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A workflow definition (see GET /api/v1/schemas/workflow).",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


async def _document(request: Request) -> Any:
    """The definition document in the body: JSON, or YAML by its media type, parsed off
    the event loop within the document limits (:mod:`calflow.workflows.documents`)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = await request.body()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("the body is not UTF-8 text", [FieldError("", "not UTF-8")]) from None
    if media in YAML_TYPES:
        raw = await asyncio.to_thread(load_text, text, "the body")
    elif media in ("", "application/json") or media.endswith("+json"):
        try:
            raw = await asyncio.to_thread(documents.load_json, text, "the body")
        except ValueError as exc:
            raise ApiError(
                422, "BAD_JSON", f"the body is not JSON: {exc}", [FieldError("", str(exc))]
            ) from None
    else:
        raise ApiError(
            415, "UNSUPPORTED_MEDIA_TYPE", "send JSON or YAML (application/yaml, text/yaml)"
        )
    try:
        json.dumps(raw)
    except (TypeError, ValueError):  # YAML dates and the like: not a JSON document
        raise ValidationError(
            "the definition holds values JSON cannot (write dates and times as strings)"
        ) from None
    return raw


AllowMissing = Annotated[
    bool,
    Query(
        description="Save even if a step names an integration that does not exist yet "
        "(returned in warnings instead of refused)."
    ),
]


def _details(problems: Any) -> list[dict[str, str]]:
    return [{"field": p.path, "message": p.message} for p in problems]


async def _checked(scope: Scope, raw: Any, allow_missing: bool) -> list[dict[str, str]]:
    """The warnings of a valid definition; its problems as a ``ValidationError`` (422)."""
    try:
        checked = await asyncio.to_thread(
            scope.workflows.check, raw, allow_missing_integrations=allow_missing
        )
    except CalflowError:
        raise
    except Exception as exc:  # a document the checks did not foresee: still the input's fault
        log.warning("workflow definition check failed: %s: %s", type(exc).__name__, exc)
        raise ValidationError(
            f"the definition could not be checked ({type(exc).__name__})"
        ) from None
    return _details(checked.warnings)


def _saved(stored: StoredWorkflow, result: str, warnings: list[dict[str, str]]) -> WorkflowSaved:
    return WorkflowSaved(**stored.to_dict(), result=result, warnings=warnings)


@router.get("/workflows")
def list_workflows(scope: ScopeDep) -> WorkflowList:
    """Every workflow of the workspace, by name."""
    return WorkflowList(items=[WorkflowOut(**w.to_dict()) for w in scope.workflows.list()])


@router.post("/workflows", status_code=201, openapi_extra=DOCUMENT_BODY)
async def create_workflow(
    scope: ScopeDep, request: Request, allow_missing_integrations: AllowMissing = False
) -> WorkflowSaved:
    """Create a workflow from its definition (409 if one has its name)."""
    raw = await _document(request)
    warnings = await _checked(scope, raw, allow_missing_integrations)
    try:
        existing = await asyncio.to_thread(scope.workflows.get, str(raw["name"]))
    except NotFoundError:
        existing = None
    if existing is not None:
        raise ApiError(
            409,
            "CONFLICT",
            f"a workflow named {existing.name!r} exists ({existing.id}); PUT to change it",
            [FieldError("name", "already taken")],
        )
    stored, result = await asyncio.to_thread(scope.workflows.apply, raw)
    return _saved(stored, result, warnings)


@router.post("/workflows/validate", openapi_extra=DOCUMENT_BODY)
async def validate_workflow(
    scope: ScopeDep, request: Request, allow_missing_integrations: AllowMissing = False
) -> Validation:
    """Check a definition without saving it (the same checks as a save)."""
    try:
        raw = await _document(request)
        warnings = await _checked(scope, raw, allow_missing_integrations)
    except ValidationError as exc:
        errors = _details(exc.errors or [FieldError("", exc.message)])
        return Validation(valid=False, name=None, errors=errors)
    return Validation(valid=True, name=str(raw["name"]), errors=[], warnings=warnings)


@router.get("/schemas/workflow")
def workflow_schema(scope: ScopeDep) -> dict[str, Any]:
    """The JSON Schema of a workflow definition."""
    return schema()


@router.get("/workflows/{ref}")
def get_workflow(scope: ScopeDep, ref: str) -> WorkflowOut:
    """One workflow, by id or name."""
    return WorkflowOut(**scope.workflows.get(ref).to_dict())


@router.put("/workflows/{ref}", openapi_extra=DOCUMENT_BODY)
async def replace_workflow(
    scope: ScopeDep, ref: str, request: Request, allow_missing_integrations: AllowMissing = False
) -> WorkflowSaved:
    """Replace a workflow's definition (a new version unless nothing changed)."""
    existing = await asyncio.to_thread(scope.workflows.get, ref)
    raw = await _document(request)
    if isinstance(raw, dict):
        raw.setdefault("name", existing.name)
        if raw["name"] != existing.name:
            raise ValidationError(
                "a workflow keeps its name",
                [
                    FieldError(
                        "name", f"must be {existing.name!r} (create a new workflow to rename)"
                    )
                ],
            )
    warnings = await _checked(scope, raw, allow_missing_integrations)
    stored, result = await asyncio.to_thread(scope.workflows.apply, raw)
    return _saved(stored, result, warnings)


@router.delete("/workflows/{ref}")
def delete_workflow(scope: ScopeDep, ref: str, keep_runs: bool = False) -> WorkflowDeleted:
    """Delete a workflow and cancel its unfinished runs (reason "workflow deleted"), or
    let them go on with ``keep_runs=true``; finished runs stay visible."""
    data = lifecycle.delete_workflow(scope.workflows, scope.runs, ref, keep_runs=keep_runs)
    return WorkflowDeleted(**data)


@router.post("/workflows/{ref}/enable")
def enable_workflow(scope: ScopeDep, ref: str) -> WorkflowToggled:
    """Start matching events again."""
    return WorkflowToggled(**lifecycle.set_enabled(scope.workflows, scope.runs, ref, True))


@router.post("/workflows/{ref}/disable")
def disable_workflow(scope: ScopeDep, ref: str) -> WorkflowToggled:
    """Stop matching new events; the runs already started keep waiting and run when due
    (``runs_waiting`` says how many)."""
    return WorkflowToggled(**lifecycle.set_enabled(scope.workflows, scope.runs, ref, False))
