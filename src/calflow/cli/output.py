"""Shared CLI output: JSON printing, Rich tables, and errors shown without tracebacks."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from calflow.errors import CalflowError, FieldError, ValidationError

console = Console()
err_console = Console(stderr=True)

EXIT_FAILURE = 1
EXIT_USAGE = 2


def print_json(value: Any) -> None:
    """Machine-readable output on stdout (no colours, no wrapping)."""
    sys.stdout.write(json.dumps(value, indent=2, default=str, ensure_ascii=False) + "\n")


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A Rich table on stdout; a value too wide for its column wraps onto more lines
    (``fold``), never cut short, so every id printed can be copied whole."""
    t = Table(title=title, show_lines=False)
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    console.print(t)


def show_error(exc: CalflowError) -> None:
    """A clear message on stderr: the error's code, message, and each field problem."""
    err_console.print(
        f"[bold red]error[/] ({exc.code}): {exc.message}", highlight=False, soft_wrap=True
    )
    if isinstance(exc, ValidationError):
        for problem in exc.errors:
            err_console.print(
                f"  • {problem.path or '(input)'}: {problem.message}", highlight=False
            )


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``message`` as a usage error; return the ``typer.Exit`` to raise."""
    err_console.print(f"[bold red]error[/]: {message}", highlight=False)
    return typer.Exit(code)


def parse_json_arg(text: str | None, what: str) -> Any:
    """A JSON value from ``text``, ``@file`` or ``-`` (stdin); ``ValidationError`` if bad."""
    if text is None:
        return None
    source = text
    if text == "-":
        source = sys.stdin.read()
    elif text.startswith("@"):
        try:
            source = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValidationError(f"cannot read {what} from {text[1:]}: {exc.strerror}") from exc
    try:
        return json.loads(source)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"{what} is not valid JSON",
            [FieldError(what, f"{exc.msg} at line {exc.lineno} column {exc.colno}", "json")],
        ) from exc


def parse_pairs(pairs: Sequence[str] | None, what: str = "--set") -> dict[str, str]:
    """``key=value`` pairs into a dict; ``ValidationError`` naming a malformed pair."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValidationError(
                f"{what} takes key=value",
                [FieldError(what, f"{pair!r} is not key=value", "format")],
            )
        out[key.strip()] = value
    return out
