"""The ``calflow`` command line."""

from __future__ import annotations

import sys

import click
import typer

from calflow.cli.actions_cmd import actions_app, fetch
from calflow.cli.apps_cmd import apps_app
from calflow.cli.demo_cmd import demo
from calflow.cli.events_cmd import events_app, serve, webhooks_app
from calflow.cli.integrations_cmd import integrations_app
from calflow.cli.keys_cmd import keys_app
from calflow.cli.mcp_cmd import mcp_app
from calflow.cli.output import EXIT_FAILURE, EXIT_USAGE, show_error
from calflow.cli.prune_cmd import prune_cmd
from calflow.cli.replay_cmd import replay, replays_app
from calflow.cli.sandbox_cmd import sandbox
from calflow.cli.tokens_cmd import tokens_app, workspaces_app
from calflow.cli.workflows_cmd import runs_app, worker, workflows_app
from calflow.errors import CalflowError, ConfigError, ValidationError

app = typer.Typer(
    name="calflow",
    help="Booking-platform automation: Cal.com and SavvyCal bookings drive reliable work.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # every command inherits them
)


def _version(value: bool) -> None:
    if value:
        from calflow import __version__

        typer.echo(f"calflow {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        help="Print calflow's version and exit.",
        callback=_version,
        is_eager=True,
    ),
) -> None:
    """Booking-platform automation: Cal.com and SavvyCal bookings drive reliable work."""


app.add_typer(apps_app, name="apps")
app.add_typer(integrations_app, name="integrations")
app.add_typer(actions_app, name="actions")
app.add_typer(keys_app, name="keys")
app.add_typer(replays_app, name="replays")
app.add_typer(events_app, name="events")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(workflows_app, name="workflows")
app.add_typer(runs_app, name="runs")
app.add_typer(mcp_app, name="mcp")
app.add_typer(tokens_app, name="tokens")
app.add_typer(workspaces_app, name="workspaces")
app.command("fetch")(fetch)
app.command("sandbox")(sandbox)
app.command("demo")(demo)
app.command("replay")(replay)
app.command("serve")(serve)
app.command("worker")(worker)
app.command("prune")(prune_cmd)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; errors print a clear message, never a traceback.

    Exit 2: bad usage, invalid input, or configuration to fix (unknown app, integration…).
    Exit 1: the request failed (provider refused or unreachable, calflow bug).
    """
    try:
        result = app(args=argv, prog_name="calflow", standalone_mode=False)
    except click.exceptions.Abort:
        typer.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (ConfigError, ValidationError) as exc:  # fix the command, input or configuration
        show_error(exc)
        return EXIT_USAGE
    except CalflowError as exc:  # the provider or calflow failed the request
        show_error(exc)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
