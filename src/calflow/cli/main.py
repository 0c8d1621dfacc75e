"""The ``calflow`` command line."""

from __future__ import annotations

import sys

import click
import typer

from calflow.cli.lazy import LazyGroup
from calflow.cli.output import EXIT_FAILURE, EXIT_USAGE, show_error
from calflow.errors import CalflowError, ConfigError, ValidationError

app = typer.Typer(
    name="calflow",
    cls=LazyGroup,  # each command's module is imported when that command runs
    help="Booking-platform automation: Cal.com and SavvyCal bookings drive reliable work.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion, --show-completion
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
