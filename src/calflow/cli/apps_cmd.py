"""``calflow apps``: the installed apps, their actions and fetchers."""

from __future__ import annotations

import json
from typing import Any

import typer

from calflow.cli.output import console, print_json, table
from calflow.flowapp import Action, App, default_registry
from calflow.flowapp.fields import input_fields

apps_app = typer.Typer(help="Installed FlowApps.", no_args_is_help=True)


@apps_app.command("list")
def list_apps(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List apps with their actions and fetchers."""
    registry = default_registry()
    if as_json:
        print_json(registry.catalogue())
        return
    table(
        "Apps",
        ["app", "name", "actions", "fetchers"],
        [
            (
                a.key,
                a.name,
                ", ".join(x.key for x in a.actions),
                ", ".join(f.key for f in a.fetchers),
            )
            for a in registry.apps
        ],
    )


@apps_app.command("show")
def show_app(
    app: str = typer.Argument(..., help="App key, e.g. cal_com."),
    action: str = typer.Argument(None, help="An action key: show its input fields and ports."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one app (credential fields, actions with ports, fetchers), or one action of it:
    `calflow apps show cal_com BookMeeting`."""
    found = default_registry().app(app)
    if action is not None:
        _show_action(found, found.action(action), as_json)
        return
    if as_json:
        print_json(found.describe())
        return
    table(
        f"{found.name} credential fields",
        ["field", "label", "secret", "default"],
        [(f.key, f.label, "yes" if f.secret else "", f.default) for f in found.credential_fields],
    )
    table(
        f"{found.name} actions",
        ["action", "kind", "ports", "description"],
        [(a.key, a.kind, ", ".join(p.key for p in a.ports), a.description) for a in found.actions],
    )
    table(
        f"{found.name} fetchers",
        ["fetcher", "depends on", "description"],
        [(f.key, ", ".join(f.depends_on), f.description) for f in found.fetchers],
    )


def _show_action(app: App, action: type[Action], as_json: bool) -> None:
    """An action's input fields (common ones, then each variant's) and its output ports."""
    described = {"app": app.key, **action.describe(), **input_fields(action.input_schema().schema)}
    if as_json:
        print_json(described)
        return
    console.print(f"[bold]{app.key} {action.key}[/]: {action.name} ({action.kind})")
    console.print(action.description, highlight=False)
    _fields_table(f"{action.key} input fields", described["fields"])
    for variant in described["variants"]:
        _fields_table(f"{action.key} input, variant {variant['title']!r} (give one variant)",
                      variant["fields"])  # fmt: skip
    table(
        f"{action.key} output ports",
        ["port", "error", "description"],
        [(p["key"], "yes" if p["error"] else "", p["description"]) for p in described["ports"]],
    )


def _fields_table(title: str, fields: list[dict[str, Any]]) -> None:
    table(
        title,
        ["field", "type", "required", "default", "fetcher", "description"],
        [
            (f["path"], f["type"], "yes" if f["required"] else "",
             "" if f["default"] is None else json.dumps(f["default"]), _fetcher(f),
             _description(f))
            for f in fields
        ],
    )  # fmt: skip


def _fetcher(field: dict[str, Any]) -> str:
    if not field["fetcher"]:
        return ""
    deps = field["depends_on"]
    return str(field["fetcher"]) + (f" (after {', '.join(deps)})" if deps else "")


def _description(field: dict[str, Any]) -> str:
    text = str(field["description"] or field["title"])
    if field["choices"]:
        allowed = "one of: " + ", ".join(str(c) for c in field["choices"])
        text = f"{text} ({allowed})" if text else allowed
    return text
