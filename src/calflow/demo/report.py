"""How the demo talks: a timestamped timeline as things happen, and the final summary."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

STYLES = {
    "setup": "bold blue",
    "action": "bold cyan",
    "web": "bold cyan",
    "event": "magenta",
    "dup": "magenta",
    "run": "yellow",
    "moved": "bold yellow",
    "sms": "bold green",
    "email": "bold green",
    "done": "bold green",
    "cancel": "bold red",
    "fail": "bold red",
    "note": "dim",
}


def clock(value: datetime | str | None) -> str:
    """``12:00:15`` in this machine's time zone."""
    if value is None:
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone().strftime("%H:%M:%S")


def short(text: str, width: int = 400) -> str:
    """One line, cut to ``width`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


class Timeline:
    """Prints one line per thing that happened: wall clock, seconds since start, kind, text."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = time.monotonic()
        self.lines: list[dict[str, Any]] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def __call__(self, kind: str, text: str, *, markup: str = "") -> None:
        """Print ``text`` (plain, escaped) after ``markup`` (Rich markup, trusted)."""
        now = datetime.now(UTC)
        self.lines.append({"at": now.isoformat(), "kind": kind, "text": short(text, 1000)})
        row = Table.grid(padding=(0, 1))
        row.add_column(width=14, no_wrap=True, style="dim")
        row.add_column(width=6, no_wrap=True, style=STYLES.get(kind, ""))
        row.add_column(overflow="fold")
        row.add_row(f"{clock(now)} +{self.elapsed():.0f}s", kind, markup + escape(short(text)))
        self.console.print(row, highlight=False)

    def heading(self, text: str) -> None:
        self.console.print(f"\n[bold]{escape(text)}[/]", highlight=False)

    def info(self, label: str, text: str) -> None:
        self.console.print(f"  [bold]{escape(label):<13}[/] {escape(text)}", highlight=False)


def summary_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A table whose last column wraps (the others never do)."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, title_style="bold")
    for n, col in enumerate(columns):
        last = n == len(columns) - 1
        table.add_column(col, overflow="fold", no_wrap=not last)
    for row in rows:
        table.add_row(*(escape("" if v is None else str(v)) for v in row))
    return table


def print_summary(console: Console, summary: dict[str, Any]) -> None:
    """The summary as Rich tables: events, runs, messages, then the verdict."""
    label = summary["labels"]
    console.print()
    console.print(
        summary_table(
            "Events (one per booking change, every delivery counted)",
            ["kind", "booking", "deliveries", "event"],
            [(e["kind"], label.get(e["booking_uid"], e["booking_uid"]),
              " + ".join(e["sources"]), e["id"]) for e in summary["events"]],
        )
    )  # fmt: skip
    console.print(
        summary_table(
            "Runs",
            ["workflow", "booking", "status", "due / reason"],
            [(r["workflow"], label.get(r["booking_uid"], r["booking_uid"]), r["status"],
              r["cancel_reason"] or " → ".join(clock(d) for d in r["due"]) or "")
             for r in summary["runs"]],
        )
    )  # fmt: skip
    messages = [("SMS", m["to"], m["body"]) for m in summary["sms"]]
    messages += [("email", ", ".join(m["to"]), m["subject"]) for m in summary["emails"]]
    console.print(summary_table("Messages sent", ["via", "to", "text"], messages))
    waiting = [r for r in summary["runs"] if r["status"] == "waiting"]
    if waiting:
        names = ", ".join(sorted({r["workflow"] for r in waiting}))
        console.print(
            f"[dim]{len(waiting)} run(s) still waiting ({names}): durable, they resume whenever "
            "calflow runs on this home again (or stay up with --keep-running).[/]",
            highlight=False,
        )
    if summary["ok"]:
        console.print(
            f"[bold green]✓ done in {summary['duration_s']:.0f} s[/]: every expected message "
            "arrived.",
            highlight=False,
        )
    else:
        console.print("[bold red]✗ the demo failed:[/]", highlight=False)
        for problem in summary["missing"]:
            console.print(f"  • {escape(problem)}", highlight=False)
