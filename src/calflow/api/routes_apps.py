"""The apps catalogue: what can be connected, run and fetched.

- ``GET /api/v1/apps``: every installed app with its credential fields (also as a JSON
  Schema, secret fields ``writeOnly``), its actions (input JSON Schema with ``oneOf``
  variants, defaults, ``x-fetcher`` and ``x-fetcher-depends-on``; output ports) and its
  data fetchers (with the fields they depend on).
- ``GET /api/v1/apps/{app}`` and ``GET /api/v1/apps/{app}/actions/{action}``: one of them.
The catalogue is the same for every workspace; it still needs a token.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from calflow.api.deps import ApiRoute, ScopeDep
from calflow.api.errors import ERROR_RESPONSES
from calflow.api.models import ActionOut, AppList, AppOut
from calflow.flowapp.action import Action
from calflow.flowapp.app import App
from calflow.server.hooks import PROVIDERS

router = APIRouter(route_class=ApiRoute, responses=ERROR_RESPONSES, tags=["apps"])


def credential_schema(app: App) -> dict[str, Any]:
    """The app's credential fields as a JSON Schema (what a form for an integration needs)."""
    properties: dict[str, Any] = {}
    for f in app.credential_fields:
        prop: dict[str, Any] = {"type": "string", "title": f.label}
        if f.description:
            prop["description"] = f.description
        if f.default is not None:
            prop["default"] = f.default
        if f.placeholder:
            prop["examples"] = [f.placeholder]
        if f.choices:
            prop["enum"] = list(f.choices)
        if f.secret:
            prop["writeOnly"] = True
        properties[f.key] = prop
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    required = [f.key for f in app.credential_fields if f.required and f.default is None]
    if required:
        schema["required"] = required
    if app.auth_modes:
        schema["anyOf"] = [{"required": list(m.fields), "title": m.label} for m in app.auth_modes]
    return schema


def _label(key: str) -> str:
    return key.replace("_", " ").capitalize()


def describe_action(action: type[Action]) -> dict[str, Any]:
    out = action.describe()
    out["ports"] = [{**p, "label": _label(p["key"])} for p in out["ports"]]
    return out


def describe_app(app: App) -> dict[str, Any]:
    out = app.describe()
    out["credential_schema"] = credential_schema(app)
    out["actions"] = [describe_action(a) for a in app.actions]
    out["receives_webhooks"] = app.key in PROVIDERS
    return out


@router.get("/apps")
def list_apps(scope: ScopeDep) -> AppList:
    """Every installed app, with its actions and fetchers."""
    return AppList(items=[AppOut(**describe_app(a)) for a in scope.state.registry.apps])


@router.get("/apps/{app}")
def get_app(scope: ScopeDep, app: str) -> AppOut:
    """One app (404 if it is not installed)."""
    return AppOut(**describe_app(scope.state.registry.app(app)))


@router.get("/apps/{app}/actions/{action}")
def get_action(scope: ScopeDep, app: str, action: str) -> ActionOut:
    """One action: its full input JSON Schema and its output ports."""
    return ActionOut(**describe_action(scope.state.registry.action(app, action)))
