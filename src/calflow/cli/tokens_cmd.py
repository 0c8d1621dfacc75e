"""``calflow tokens`` and ``calflow workspaces``: API access from the command line.

A token is printed once, when it is made; calflow keeps only its hash.
"""

from __future__ import annotations

import typer

from calflow.cli.output import err_console, print_json, table
from calflow.cli.scope import workspace_option
from calflow.db.refs import TOKEN, resolve
from calflow.errors import NotFoundError
from calflow.workspaces import TokenStore, WorkspaceStore

tokens_app = typer.Typer(help="API tokens (Authorization: Bearer …).", no_args_is_help=True)
workspaces_app = typer.Typer(help="Workspaces (tenants).", no_args_is_help=True)


@tokens_app.command("create")
def create_token(
    workspace: str = workspace_option(
        help="Workspace name (created if missing; default: $CALFLOW_WORKSPACE, else 'default')."
    ),
    name: str = typer.Option("", "--name", help="A label to recognise the token by."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Make an API token and print it (once: it cannot be shown again)."""
    store = WorkspaceStore.default()
    try:  # a name or an id; a new name makes the workspace
        found = store.find(workspace)
    except NotFoundError:
        found = store.ensure(workspace)
    info, secret = TokenStore(store.engine).create(found.id, name)
    if as_json:
        print_json({"workspace": found.public(), "token": info.public(), "secret": secret})
        return
    typer.echo(secret)
    err_console.print(
        f"token {info.id} for workspace {found.name!r}: shown once, store it now",
        style="dim",
        highlight=False,
    )


@tokens_app.command("list")
def list_tokens(
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The workspace's tokens (their prefix, never their text)."""
    store = WorkspaceStore.default()
    found = store.find(workspace)
    rows = [t.public() for t in TokenStore(store.engine).list(found.id)]
    if as_json:
        print_json(rows)
        return
    table(
        f"tokens of {found.name}",
        ["id", "name", "prefix", "created", "last used", "revoked"],
        [
            (r["id"], r["name"], r["prefix"] + "…", r["created_at"], r["last_used_at"] or "",
             r["revoked_at"] or "")
            for r in rows
        ],
    )  # fmt: skip


@tokens_app.command("revoke")
def revoke_token(
    token_id: str = typer.Argument(..., help="Token id (tok_…) or a unique prefix of it."),
    workspace: str = workspace_option(
        default=None,
        envvar=None,
        help="Only look in this workspace (default: every workspace).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Revoke a token of any workspace: requests with it are refused (401) from now on."""
    store = WorkspaceStore.default()
    tokens = TokenStore(store.engine)
    if workspace is None:
        found = tokens.find(resolve(store.engine, TOKEN, token_id, None))
    else:
        space = store.find(workspace)
        where = f" in workspace {space.name!r}"
        found = tokens.get(space.id, resolve(store.engine, TOKEN, token_id, space.id, where))
    info = tokens.revoke(found.workspace_id, found.id)
    if as_json:
        print_json(info.public())
    else:
        typer.echo(f"revoked token {info.id} ({info.prefix}…)")


@workspaces_app.command("list")
def list_workspaces(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every workspace."""
    rows = [w.public() for w in WorkspaceStore.default().list()]
    if as_json:
        print_json(rows)
        return
    table(
        "workspaces",
        ["id", "name", "created"],
        [(r["id"], r["name"], r["created_at"]) for r in rows],
    )


@workspaces_app.command("create")
def create_workspace(
    name: str = typer.Argument(..., help="Workspace name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create a workspace (its tokens: `calflow tokens create --workspace NAME`)."""
    found = WorkspaceStore.default().create(name)
    if as_json:
        print_json(found.public())
    else:
        typer.echo(f"created workspace {found.name!r} ({found.id})")
