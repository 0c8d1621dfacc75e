"""``calflow demo``: watch bookings turn into SMS and email within a minute, all offline.

See :mod:`calflow.demo` for what runs and the story it tells.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from calflow.cli.output import EXIT_FAILURE, console, err_console, fail, print_json

HOME_FILES = ("calflow.db", "calflow.db-writer.lock", "calflow.db-writer-queue.lock",
              "dbos.sqlite", "dispatch.lock", "secret.key", "serve.lock")  # fmt: skip
"""What calflow keeps in a home (SQLite adds -wal, -shm and -journal files beside them)."""


def _foreign_files(home: Path) -> list[str]:
    """Entries of ``home`` that calflow did not make."""
    allowed = {f"{name}{suffix}" for name in HOME_FILES for suffix in ("", "-wal", "-shm",
                                                                          "-journal")}  # fmt: skip
    return sorted(p.name for p in home.iterdir() if p.name not in allowed)


def _wipe(home: Path) -> None:
    if not home.exists():
        return
    if not home.is_dir():
        raise fail(f"--home {home} is not a directory")
    foreign = _foreign_files(home)
    if foreign:
        shown = ", ".join(foreign[:5]) + ("…" if len(foreign) > 5 else "")
        raise fail(
            f"--fresh would delete {home}, which holds files calflow did not make ({shown}); "
            "remove them yourself or choose another --home"
        )
    shutil.rmtree(home)


def demo(
    home: Path = typer.Option(
        None, "--home", help="Where the demo keeps its data (default: <calflow home>/demo)."
    ),
    fresh: bool = typer.Option(False, "--fresh", help="Start from an empty demo home."),
    keep_running: bool = typer.Option(
        False, "--keep-running", help="Stay up afterwards, serving (Ctrl-C to stop)."
    ),
    timeout: float = typer.Option(
        90.0, "--timeout", min=10.0, help="Seconds to wait for the expected messages."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the summary as JSON (the timeline goes to stderr)."
    ),
) -> None:
    """Book, reschedule and cancel against the sandbox and watch calflow send the SMS and
    emails its ready-made workflows promise: sandbox, receiver and engine in one process."""
    from calflow.demo import run_demo
    from calflow.settings import get_settings

    home = (home or get_settings().home / "demo").expanduser().resolve()
    if fresh:
        _wipe(home)
    out: Console = err_console if as_json else console
    done: dict[str, Any] = {}

    def on_summary(result: dict[str, Any]) -> None:
        done.update(result)
        if as_json:
            print_json(result)
        else:
            for command in result["inspect"]:
                out.print(f"  {command}", highlight=False, soft_wrap=True, markup=False)

    from calflow.home import make_private_dir
    from calflow.server.serve_lock import ServeLock

    make_private_dir(home)
    try:
        with ServeLock(home):  # the demo serves this home: no `calflow serve` beside it
            asyncio.run(
                run_demo(home, out, wait_s=timeout, keep_running=keep_running,
                         on_summary=on_summary)
            )  # fmt: skip
    except KeyboardInterrupt:
        if not done:
            raise
    if not done.get("ok"):
        raise typer.Exit(EXIT_FAILURE)
