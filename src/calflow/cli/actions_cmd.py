"""``calflow actions run`` and ``calflow fetch``: run one action or fetcher."""

from __future__ import annotations

import asyncio
from typing import Any

import typer

from calflow.cli.output import EXIT_FAILURE, console, parse_json_arg, print_json, table
from calflow.cli.scope import Scope, scope, workspace_option
from calflow.db.refs import INTEGRATION
from calflow.errors import ValidationError
from calflow.flowapp import ActionResult, Option
from calflow.flowapp.runner import Runner

actions_app = typer.Typer(help="Run FlowApp actions.", no_args_is_help=True)


def _integration(found: Scope, integration: str | None) -> str | None:
    return None if integration is None else found.ref(INTEGRATION, integration)


def _run_action(
    found: Scope, app: str, action: str, data: Any, integration: str | None
) -> ActionResult:
    async def go() -> ActionResult:
        async with Runner(store=found.store) as runner:
            return await runner.run_action(app, action, data, _integration(found, integration))

    return asyncio.run(go())


def _fetch(
    found: Scope, app: str, fetcher: str, integration: str | None, context: Any
) -> list[Option]:
    async def go() -> list[Option]:
        async with Runner(store=found.store) as runner:
            return await runner.fetch_options(
                app, fetcher, _integration(found, integration), context
            )

    return asyncio.run(go())


def show_result(result: ActionResult) -> None:
    colour = "green" if result.success else "red"
    console.print(f"[bold {colour}]{result.port}[/]" + (f" ({result.code})" if result.code else ""))
    if result.message:
        console.print(result.message, highlight=False)
    if result.data is not None:
        console.print_json(data=result.data)


@actions_app.command("run")
def run(
    app: str = typer.Argument(..., help="App key, e.g. cal_com."),
    action: str = typer.Argument(..., help="Action key, e.g. BookMeeting."),
    integration: str = typer.Option(
        None, "--integration", "-i", help="Integration name, id or id prefix."
    ),
    input_json: str = typer.Option("{}", "--input", help="Input JSON, @file, or - for stdin."),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Run an action. Exit 0 on a result on any port, 1 on a failure, 2 on bad input."""
    data = parse_json_arg(input_json, "--input")
    if not isinstance(data, dict):
        raise ValidationError("--input must be a JSON object")
    result = _run_action(scope(workspace), app, action, data, integration)
    if as_json:
        print_json(result.to_dict())
    else:
        show_result(result)
    if not result.success:
        raise typer.Exit(EXIT_FAILURE)


def fetch(
    app: str = typer.Argument(..., help="App key, e.g. cal_com."),
    fetcher: str = typer.Argument(..., help="Fetcher key, e.g. event_types."),
    integration: str = typer.Option(
        None, "--integration", "-i", help="Integration name, id or id prefix."
    ),
    context: str = typer.Option(None, "--context", help="Context JSON for dependent fetchers."),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the options a data fetcher offers."""
    ctx = parse_json_arg(context, "--context") or {}
    if not isinstance(ctx, dict):
        raise ValidationError("--context must be a JSON object")
    options = _fetch(scope(workspace), app, fetcher, integration, ctx)
    if as_json:
        print_json([o.to_dict() for o in options])
        return
    table(
        f"{app} {fetcher}",
        ["value", "label", "description"],
        [(o.value, o.label, o.description) for o in options],
    )
