"""The tools of one workspace: one per (integration, exposed action), plus fetchers.

Tool names are ``<app>_<integration>__<action>`` in snake case (``cal_com_main__
book_meeting``) and ``<app>_<integration>__fetch_<fetcher>`` for data fetchers, kept
to 64 characters of ``[a-z0-9_]`` (the strictest limit among common tool callers). A
fetcher is a tool when an exposed action of its integration names it in
``x-fetcher``: the agent sees the options of what it may do, nothing more.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import mcp.types as mt

from calflow.errors import NotFoundError
from calflow.flowapp.action import Action, DataFetcher
from calflow.flowapp.app import App
from calflow.flowapp.registry import Registry
from calflow.integrations import Integration
from calflow.mcp.exposure import Exposure
from calflow.mcp.schema import ToolSchema, snake, tool_input_schema

log = logging.getLogger("calflow.mcp")

MAX_NAME = 64

RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "port": {"type": "string", "description": "The outcome: success, conflict, not_found…"},
        "success": {"type": "boolean"},
        "data": {"description": "What the provider answered (the booking, the slots…)."},
        "error": {
            "type": ["object", "null"],
            "description": "Why it failed; details name each field as the REST API does.",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                        "required": ["field", "message"],
                    },
                },
            },
        },
        "run_id": {"type": ["string", "null"], "description": "The run recorded for this call."},
        "summary": {"type": "string", "description": "One sentence an agent can say."},
    },
    "required": ["port", "success", "data", "error", "run_id", "summary"],
}
OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "options": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"value": {}, "label": {"type": "string"}},
                "required": ["value", "label"],
            },
        },
        "count": {"type": "integer"},
        "summary": {"type": "string"},
    },
    "required": ["options", "count", "summary"],
}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "x"


def tool_prefix(integration: Integration) -> str:
    """``cal_com_main`` for the Cal.com integration named ``main``."""
    return f"{_slug(integration.app_key)}_{_slug(integration.name)}"


def fit(name: str) -> str:
    """``name`` itself, or cut with a stable hash when it is longer than ``MAX_NAME``."""
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9]}_{digest}"


@dataclass(frozen=True)
class ToolEntry:
    """One tool: what it runs (an action or a fetcher of one integration) and its schema."""

    name: str
    integration: Integration
    app: App
    action: type[Action] | None
    fetcher: type[DataFetcher] | None
    schema: ToolSchema
    description: str

    @property
    def title(self) -> str:
        what = self.action.name if self.action is not None else self.fetcher_name
        return f"{what} ({self.app.name}: {self.integration.name})"

    @property
    def fetcher_name(self) -> str:
        return f"Options: {self.fetcher.name}" if self.fetcher is not None else ""

    def to_tool(self) -> mt.Tool:
        if self.action is not None:
            kind = self.action.kind
            annotations = mt.ToolAnnotations(
                title=self.title,
                read_only_hint=kind == "read",
                destructive_hint=kind == "destructive",
                idempotent_hint=kind == "read",
                open_world_hint=True,
            )
            output = RESULT_SCHEMA
        else:
            annotations = mt.ToolAnnotations(
                title=self.title, read_only_hint=True, idempotent_hint=True, open_world_hint=True
            )
            output = OPTIONS_SCHEMA
        return mt.Tool(
            name=self.name,
            title=self.title,
            description=self.description,
            input_schema=self.schema.schema,
            output_schema=output,
            annotations=annotations,
        )


def _ports_text(action: type[Action]) -> str:
    ports = "; ".join(f"'{p.key}': {p.description or p.key}" for p in action.ports)
    return f"Answers on a port — {ports}."


def _action_description(action: type[Action], app: App, integration: Integration) -> str:
    kind = {"read": "Read only.", "destructive": "Destructive: cannot be undone."}.get(
        action.kind, "Makes a change."
    )
    return (
        f"{action.description} ({app.name}, integration '{integration.name}'.) {kind} "
        f"{_ports_text(action)} The result has port, success, data, error, run_id and "
        "summary (a sentence you can say to the caller)."
    )


def _fetcher_schema(fetcher: type[DataFetcher]) -> ToolSchema:
    """The fetcher's declared context schema, as tool callers take it (closed)."""
    return tool_input_schema(fetcher.context_schema().schema, lambda _: None)


def integration_tools(
    registry: Registry, integration: Integration, exposure: Exposure, prefix: str | None = None
) -> list[ToolEntry]:
    """The tools of one integration under ``exposure`` (none for an unknown app)."""
    app_key = integration.app_key
    try:
        app = registry.app(app_key)
    except NotFoundError:
        log.warning("integration %r: app %r is not installed", integration.name, app_key)
        return []
    prefix = prefix or tool_prefix(integration)
    actions = [a for a in app.actions if exposure.allows(app.key, integration.name, a.key, a.kind)]
    wanted = {fetcher for a in actions for _, fetcher, _ in a.fetcher_refs()}
    fetchers = [f for f in app.fetchers if f.key in wanted]
    fetcher_tools = {f.key: fit(f"{prefix}__fetch_{snake(f.key)}") for f in fetchers}
    out: list[ToolEntry] = []
    for action in actions:
        schema = tool_input_schema(action.input_schema().schema, fetcher_tools.get)
        out.append(
            ToolEntry(
                fit(f"{prefix}__{snake(action.key)}"),
                integration,
                app,
                action,
                None,
                schema,
                _action_description(action, app, integration),
            )
        )
    for fetcher in fetchers:
        users = [a.key for a in actions if any(f == fetcher.key for _, f, _ in a.fetcher_refs())]
        description = (
            f"{fetcher.description or fetcher.name} ({app.name}, integration "
            f"'{integration.name}'.) Read only. Returns options (value, label) for the "
            f"fields of: {', '.join(snake(u) for u in users)}."
        )
        out.append(
            ToolEntry(
                fetcher_tools[fetcher.key],
                integration,
                app,
                None,
                fetcher,
                _fetcher_schema(fetcher),
                description,
            )
        )
    return out


def build_catalogue(
    registry: Registry,
    integrations: Iterable[Integration],
    settings: Mapping[str, Any] | None,
) -> dict[str, ToolEntry]:
    """Every tool of a workspace by name. Two integrations whose names give the same
    prefix (``Main`` and ``main``) both keep tools: the later's prefix ends in its id."""
    exposure = Exposure.of(settings)
    out: dict[str, ToolEntry] = {}
    prefixes: set[str] = set()
    for integration in integrations:
        prefix = tool_prefix(integration)
        if prefix in prefixes:
            prefix = f"{prefix}_{_slug(integration.id)[-6:]}"
        prefixes.add(prefix)
        for entry in integration_tools(registry, integration, exposure, prefix):
            out[entry.name] = entry
    return out
