"""``calflow doctor``: what is right and wrong with this installation, and the fixes.

One line per check (``calflow.doctor``): ``ok``, ``warn`` or ``fail``, what was found,
and after ``→`` the command or change that fixes it. Exit 0 when nothing failed, 1
otherwise; ``--json`` prints ``{"ok": bool, "checks": [{name, status, message, fix}]}``.
"""

from __future__ import annotations

import typer

from calflow.cli.output import EXIT_FAILURE, console, print_json

_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def doctor(
    online: bool = typer.Option(
        False, "--online", help="Also call each integration's provider (its connection test)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Check Python, settings, the home, database, keys, integrations and the server."""
    from calflow.doctor import run_checks

    checks = run_checks(online=online)
    failed = any(c.status == "fail" for c in checks)
    if as_json:
        print_json({"ok": not failed, "checks": [c.to_dict() for c in checks]})
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            fix = f"  → {c.fix}" if c.fix and c.status != "ok" else ""
            console.print(
                f"[{_STYLE[c.status]}]{c.status:<4}[/] {c.name:<{width}}  {c.message}{fix}",
                highlight=False, soft_wrap=True,
            )  # fmt: skip
    if failed:
        raise typer.Exit(EXIT_FAILURE)
