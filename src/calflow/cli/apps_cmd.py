"""``calflow apps``: the installed apps, their actions and fetchers."""

from __future__ import annotations

import typer

from calflow.cli.output import print_json, table
from calflow.flowapp import default_registry

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
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one app: credential fields, actions with ports, fetchers."""
    found = default_registry().app(app)
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
