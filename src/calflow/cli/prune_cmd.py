"""``calflow prune``: retention by hand (``calflow.retention``; serve and worker prune on
their own every ``CALFLOW_PRUNE_EVERY_S``)."""

from __future__ import annotations

import typer

from calflow.cli.output import print_json, table
from calflow.db.engine import open_engine
from calflow.errors import FieldError, ValidationError
from calflow.retention import Ages, parse_age, prune
from calflow.settings import get_settings


def prune_cmd(
    older_than: str = typer.Option(
        None,
        "--older-than",
        help="One age for every kind (30d, 12h, 2w); default: the CALFLOW_KEEP_* ages.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would go; delete nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Delete finished runs, old events, duplicate deliveries and replay jobs past their age.

    Waiting runs, their events and each booking's latest change are never pruned.
    """
    settings = get_settings()
    if older_than is None:
        ages = Ages.from_settings(settings)
    else:
        try:
            age = parse_age(older_than)
        except ValueError as exc:
            raise ValidationError(
                f"--older-than: {exc}", [FieldError("older_than", str(exc), "duration")]
            ) from None
        if age is None:
            raise ValidationError(
                "--older-than 0 would keep everything: give an age such as 30d",
                [FieldError("older_than", "must be an age greater than 0", "minimum")],
            )
        ages = Ages.every(age)
    pruned = prune(open_engine(settings), ages, dry_run=dry_run)
    counts = {k: v for k, v in pruned.to_dict().items() if k != "done"}
    if as_json:
        print_json({"dry_run": dry_run, **counts})
        return
    verb = "would prune" if dry_run else "pruned"
    table(f"{verb} (rows)", ["table", "rows"], [(name, str(n)) for name, n in counts.items()])
