"""``calflow integrations``: add, update, list, show, remove (secrets never printed).

A ``base_url`` or ``host`` that is not a public address is refused (exit 2) unless
``CALFLOW_ALLOW_PRIVATE`` allows it; ``update`` changing either removes the stored
secrets not given again and says so."""

from __future__ import annotations

import typer

from calflow.cli.output import parse_pairs, print_json, table
from calflow.cli.scope import scope, workspace_option
from calflow.db.refs import INTEGRATION
from calflow.flowapp import default_registry
from calflow.netpolicy import check_fields_sync, operator_allowance

integrations_app = typer.Typer(
    help="Connections to apps, with encrypted credentials.", no_args_is_help=True
)


@integrations_app.command("add")
def add(
    app: str = typer.Argument(..., help="App key, e.g. cal_com."),
    name: str = typer.Option(..., "--name", help="A name to refer to it by."),
    values: list[str] = typer.Option(None, "--set", help="A field: key=value (repeatable)."),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Add an integration: `calflow integrations add cal_com --name main --set api_key=…`."""
    found = default_registry().app(app)
    config, secrets = found.fields_for_new(parse_pairs(values))
    check_fields_sync(config, operator_allowance())
    integration = scope(workspace).store.add(found.key, name, config, secrets)
    if as_json:
        print_json(integration.public_view())
    else:
        typer.echo(f"added integration {integration.name!r} ({integration.id}) for {found.key}")


@integrations_app.command("update")
def update(
    name: str = typer.Argument(..., help="Name, id or id prefix."),
    values: list[str] = typer.Option(None, "--set", help="A field: key=value (repeatable)."),
    unset: list[str] = typer.Option(None, "--unset", help="A field to remove (repeatable)."),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Change fields of an integration in place (same id):
    `calflow integrations update main --set webhook_signature=standard`."""
    found_scope = scope(workspace)
    store = found_scope.store
    current = store.get(found_scope.ref(INTEGRATION, name))
    found = default_registry().app(current.app_key)
    removed = list(unset or [])
    config, secrets = found.fields_for_update(current.values(), parse_pairs(values), removed)
    after = {k: v for k, v in {**current.config, **config}.items() if k not in removed}
    check_fields_sync(after, operator_allowance())
    integration = store.update(current.id, config, secrets, removed)
    if as_json:
        print_json({**integration.public_view(), "cleared_secrets": list(integration.cleared)})
    else:
        changed = ", ".join([*config, *secrets, *(f"-{k}" for k in removed)]) or "nothing"
        typer.echo(f"updated integration {integration.name!r} ({integration.id}): {changed}")
        if integration.cleared:
            typer.echo(
                f"removed secrets {', '.join(integration.cleared)}: base_url or host changed "
                "and they were not given again (set them with --set)"
            )


@integrations_app.command("list")
def list_(
    app: str = typer.Option(None, "--app", help="Only this app's integrations."),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List integrations."""
    items = scope(workspace).store.list(app)
    if as_json:
        print_json([i.public_view() for i in items])
        return
    table(
        "Integrations",
        ["name", "id", "app", "config", "secrets"],
        [
            (
                i.name,
                i.id,
                i.app_key,
                ", ".join(f"{k}={v}" for k, v in i.config.items()),
                ", ".join(sorted(i.secrets)),
            )
            for i in items
        ],
    )


@integrations_app.command("show")
def show(
    name: str = typer.Argument(..., help="Name, id or id prefix."),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one integration (secret values masked)."""
    found = scope(workspace)
    view = found.store.get(found.ref(INTEGRATION, name)).public_view()
    if as_json:
        print_json(view)
        return
    for key, value in view.items():
        typer.echo(f"{key}: {value}")


@integrations_app.command("remove")
def remove(
    name: str = typer.Argument(..., help="Name, id or id prefix."),
    workspace: str = workspace_option(),
) -> None:
    """Delete an integration and its stored secrets."""
    found = scope(workspace)
    gone = found.store.get(found.ref(INTEGRATION, name))
    found.store.remove(gone.id)
    typer.echo(f"removed integration {gone.name!r} ({gone.id})")
