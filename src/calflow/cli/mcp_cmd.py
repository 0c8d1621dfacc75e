"""``calflow mcp``: serve MCP over stdio, and choose what a workspace exposes."""

from __future__ import annotations

import asyncio

import typer

from calflow.cli.output import console, print_json, table
from calflow.cli.scope import workspace_option

mcp_app = typer.Typer(
    help="MCP server: calflow's actions as tools for AI agents.",
    invoke_without_command=True,
)
expose_app = typer.Typer(
    help="Which actions the MCP server exposes (the workspace's mcp.expose patterns).",
    no_args_is_help=True,
)
mcp_app.add_typer(expose_app, name="expose")


@mcp_app.callback()
def mcp(
    ctx: typer.Context,
    workspace: str = workspace_option(),
) -> None:
    """Serve the workspace's tools over stdio (what an MCP host starts), or a subcommand."""
    if ctx.invoked_subcommand is not None:
        return
    from calflow.mcp.stdio import serve_stdio

    asyncio.run(serve_stdio(workspace))


def _show(patterns: list[str], is_default: bool, as_json: bool) -> None:
    if as_json:
        print_json({"expose": patterns, "default": is_default})
        return
    console.print(
        "exposed: " + ", ".join(patterns) + ("  (the default)" if is_default else ""),
        highlight=False,
    )


def _current(workspace: str) -> tuple[str, list[str], bool]:
    from calflow.mcp.exposure import patterns_of
    from calflow.workspaces import WorkspaceStore

    found = WorkspaceStore.default().find(workspace)
    section = found.settings.get("mcp")
    is_default = not (isinstance(section, dict) and isinstance(section.get("expose"), list))
    return found.id, patterns_of(found.settings), is_default


def _save(workspace_id: str, patterns: list[str] | None) -> list[str]:
    """Store ``patterns`` (None: back to the default); the stored list."""
    from calflow.mcp.exposure import DEFAULT_EXPOSE, parse_all
    from calflow.workspaces import WorkspaceStore

    store = WorkspaceStore.default()
    section = dict(store.get(workspace_id).settings.get("mcp") or {})
    if patterns is None:
        section.pop("expose", None)
    else:
        parse_all(patterns)  # refuse a malformed pattern before storing anything
        section["expose"] = patterns
    store.update_settings(workspace_id, {"mcp": section or None})
    return list(DEFAULT_EXPOSE) if patterns is None else patterns


@expose_app.command("show")
def expose_show(
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The patterns in force (the default when none are set)."""
    _, patterns, is_default = _current(workspace)
    _show(patterns, is_default, as_json)


@expose_app.command("set")
def expose_set(
    patterns: list[str] = typer.Argument(..., help="e.g. @read @booking main.cancel_booking"),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Replace the patterns. SCOPE.ACTION (integration or app, action key; * wildcards),
    @read / @write / @destructive / @booking / @all for kinds, ! to exclude."""
    workspace_id, _, _ = _current(workspace)
    _show(_save(workspace_id, list(patterns)), False, as_json)


@expose_app.command("add")
def expose_add(
    patterns: list[str] = typer.Argument(..., help="e.g. main.cancel_booking"),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Add patterns to those in force (to the default if none are set)."""
    workspace_id, current, _ = _current(workspace)
    merged = current + [p for p in patterns if p not in current]
    _show(_save(workspace_id, merged), False, as_json)


@expose_app.command("remove")
def expose_remove(
    patterns: list[str] = typer.Argument(..., help="Patterns exactly as listed by show."),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Remove patterns from those in force."""
    workspace_id, current, _ = _current(workspace)
    _show(_save(workspace_id, [p for p in current if p not in patterns]), False, as_json)


@expose_app.command("reset")
def expose_reset(
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Back to the default (reads and booking changes, nothing destructive)."""
    workspace_id, _, _ = _current(workspace)
    _show(_save(workspace_id, None), True, as_json)


@mcp_app.command("tools")
def tools(
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print each tool as MCP lists it."),
) -> None:
    """The tools an MCP client of the workspace sees now."""
    from calflow.db.engine import open_engine
    from calflow.mcp.server import CalflowMCP
    from calflow.settings import get_settings
    from calflow.vault import Vault

    settings = get_settings()
    workspace_id, _, _ = _current(workspace)
    server = CalflowMCP(open_engine(settings), Vault.from_settings(settings))
    entries = server.catalogue(workspace_id)
    if as_json:
        print_json(
            [e.to_tool().model_dump(by_alias=True, exclude_none=True) for e in entries.values()]
        )
        return
    table(
        "MCP tools",
        ["tool", "kind", "integration", "runs"],
        [
            (
                name,
                e.action.kind if e.action else "options",
                e.integration.name,
                f"{e.app.key}.{e.action.key if e.action else e.fetcher.key if e.fetcher else ''}",
            )
            for name, e in entries.items()
        ],
    )
