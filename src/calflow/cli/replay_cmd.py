"""``calflow replay``: re-deliver a provider's history; ``calflow replays``: the jobs."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from calflow.cli.output import EXIT_FAILURE, console, err_console, print_json, table
from calflow.cli.scope import Scope, scope, workspace_option
from calflow.errors import ValidationError

replays_app = typer.Typer(help="Replay jobs: list, show, cancel.", no_args_is_help=True)

PROVIDER_NAMES = {
    "savvycal": "savvycal",
    "cal_com": "cal_com",
    "calcom": "cal_com",
    "cal.com": "cal_com",
}


def _engine(found: Scope) -> Any:
    from calflow.netpolicy import EVERYTHING
    from calflow.replay import ReplayEngine

    # --allow-private: the operator on this machine may reach any address
    return ReplayEngine(store=found.store, grant=EVERYTHING, flag_text="--allow-private")


def _job(found: Scope, job: str) -> str:
    from calflow.db.refs import REPLAY_JOB

    return found.ref(REPLAY_JOB, job)


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    """A Rich progress bar on a terminal (stderr); a no-op callback otherwise."""
    if not enabled:
        yield None
        return
    bar = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("sent {task.fields[sent]} · skipped {task.fields[skipped]} · "
                   "[red]failed {task.fields[failed]}[/]"),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )  # fmt: skip
    task = bar.add_task("replay", total=None, sent=0, skipped=0, failed=0)

    def update(p: Any) -> None:
        done = p.sent + p.skipped + p.failed
        bar.update(
            task,
            description=f"replay {p.job}",
            completed=done,
            total=p.total,
            sent=p.sent,
            skipped=p.skipped,
            failed=p.failed,
        )

    with bar:
        yield update


def _show_summary(data: dict[str, Any]) -> None:
    status = data["status"]
    colour = "green" if status == "completed" and not data["failed"] else "red"
    console.print(
        f"[bold {colour}]{status}[/] replay {data['job']} ({data['provider']} "
        f"{data['integration']!r} → {data['target']})",
        highlight=False,
    )
    console.print(
        f"  fetched {data['fetched']}  sent {data['sent']}  skipped {data['skipped']}  "
        f"failed {data['failed']}  in {data['duration_s']:.2f} s "
        f"({data['items_per_s']:.0f} items/s)",
        highlight=False,
    )
    t = data.get("timings") or {}
    if t:
        console.print(
            f"  reading history {t.get('fetch_s', 0):.2f} s; send latency p50 "
            f"{t.get('send_p50_ms', 0):.1f} ms, p95 {t.get('send_p95_ms', 0):.1f} ms, "
            f"max {t.get('send_max_ms', 0):.1f} ms",
            highlight=False,
        )
    for label, key in (("skipped", "skipped_reasons"), ("failed", "failed_reasons")):
        for reason, count in sorted(data.get(key, {}).items(), key=lambda kv: -kv[1]):
            console.print(f"  {label}: {reason} x {count}", highlight=False)
    for item in data.get("would_send", [])[:1000]:
        console.print(
            f"  would send {item['kind']} {item['object']} (start {item['start']}) as {item['id']}",
            highlight=False,
        )
    if data.get("history"):
        console.print(
            "  replayed as history: a change that happened more than 60 s ago starts no "
            "workflow (--run-workflows to start them)",
            highlight=False,
        )
    if data.get("error"):
        console.print(f"  [red]{data['error']}[/]", highlight=False)
    if (status != "completed" or data["failed"]) and not data["dry_run"]:
        console.print(f"  resume with: calflow replay --resume {data['job']}", highlight=False)


def replay(
    provider: str = typer.Argument(
        None, help="savvycal or cal_com (optional: taken from the integration)."
    ),
    integration: str = typer.Option(None, "--integration", "-i", help="Integration to read."),
    to: str = typer.Option(None, "--to", help="Webhook URL to POST each item to."),
    into: str = typer.Option(None, "--into", help="'calflow': publish into calflow's event bus."),
    secret: str = typer.Option(
        None,
        "--secret",
        envvar="CALFLOW_REPLAY_SECRET",
        help="Signing secret (default: the integration's webhook secret).",
    ),
    signature: str = typer.Option(
        "provider",
        "--signature",
        help="provider: sign as the provider does; standard: Standard Webhooks "
        "(webhook-id/-timestamp/-signature, --secret whsec_…).",
    ),
    since: str = typer.Option(None, "--since", help="Only objects starting at/after this."),
    until: str = typer.Option(None, "--until", help="Only objects starting before this."),
    kinds: str = typer.Option(
        None, "--kinds", help="Comma list: created,rescheduled,cancelled,… or native names."
    ),
    concurrency: int = typer.Option(  # replay.model.DEFAULT_CONCURRENCY (not imported:
        32,
        "--concurrency",
        "-c",
        help="Items in flight at once.",  # the CLI starts fast)
    ),
    rate: float = typer.Option(None, "--rate", help="At most this many sends per second."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List and count; send nothing."),
    allow_private: bool = typer.Option(
        False, "--allow-private", help="Allow private, loopback and link-local targets."
    ),
    limit: int = typer.Option(None, "--limit", help="Stop after this many items."),
    timeout: float = typer.Option(10.0, "--timeout", help="Seconds per delivery attempt."),
    attempts: int = typer.Option(5, "--attempts", help="Delivery attempts per item."),
    run_workflows: bool = typer.Option(
        False,
        "--run-workflows",
        help="With --into calflow: let old changes start workflows too (by default a "
        "change that happened more than 60 s ago starts none).",
    ),
    resume: str = typer.Option(
        None, "--resume", help="Continue this job (id or id prefix) from its checkpoint."
    ),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Replay an integration's booking history to a webhook URL or into calflow.

    Exit 0 when every item was sent or skipped, 1 when items failed or the job stopped
    (resume it with --resume JOB), 2 for bad options, 130 when interrupted.
    """
    from calflow.db.refs import INTEGRATION
    from calflow.replay import ReplayOptions
    from calflow.replay.timespec import parse_when

    show_bar = not as_json and sys.stderr.isatty()
    found = scope(workspace)
    engine = _engine(found)
    options = None
    if resume:
        resume = _job(found, resume)
    else:
        if not integration:
            raise ValidationError("--integration is required (or --resume JOB)")
        integration = found.ref(INTEGRATION, integration)
        options = ReplayOptions(
            integration=integration,
            to=to,
            into=into,
            secret=secret,
            since=parse_when(since, "since"),
            until=parse_when(until, "until"),
            kinds=tuple(k for k in (kinds or "").split(",") if k.strip()),
            concurrency=concurrency,
            rate=rate,
            dry_run=dry_run,
            allow_private=allow_private,
            limit=limit,
            timeout_s=timeout,
            max_attempts=attempts,
            signature=signature,
            run_workflows=run_workflows,
        )
        if provider:
            _check_provider(provider, engine, integration)
    try:
        with _progress(show_bar) as progress:
            if options is None:
                run = engine.resume(
                    resume, progress, secret=secret, allow_private=allow_private or None
                )
            else:
                run = engine.start(options, progress)
            summary = asyncio.run(run)
    except KeyboardInterrupt:
        if engine.current_job:
            err_console.print(
                f"interrupted: resume with calflow replay --resume {engine.current_job}",
                highlight=False,
            )
        raise
    data = summary.to_dict()
    if as_json:
        print_json(data)
    else:
        _show_summary(data)
    if not summary.ok:
        raise typer.Exit(EXIT_FAILURE)


def _check_provider(provider: str, engine: Any, integration: str) -> None:
    wanted = PROVIDER_NAMES.get(provider.lower())
    if wanted is None:
        raise ValidationError(
            f"unknown provider {provider!r}: replay reads savvycal or cal_com history"
        )
    found = engine.store.get(integration)
    if found.app_key != wanted:
        raise ValidationError(
            f"integration {found.name!r} is a {found.app_key} integration, not {wanted}"
        )


@replays_app.command("list")
def list_jobs(
    limit: int = typer.Option(20, "--limit", help="How many recent jobs."),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Recent replay jobs with their status and totals."""
    engine = _engine(scope(workspace))
    jobs = engine.jobs.list(limit)
    rows = [j.public(engine.jobs.totals(j.id)) for j in jobs]
    if as_json:
        print_json(rows)
        return
    table(
        "replay jobs",
        ["job", "status", "provider", "target", "sent", "skipped", "failed", "created"],
        [
            (r["job"], r["status"], r["provider"], r["target"], r["totals"]["sent"],
             r["totals"]["skipped"], r["totals"]["failed"], r["created_at"])
            for r in rows
        ],
    )  # fmt: skip


@replays_app.command("show")
def show_job(
    job: str = typer.Argument(..., help="Job id or a unique prefix of it."),
    status: str = typer.Option(None, "--status", help="List items with this status."),
    limit: int = typer.Option(100, "--limit", help="How many items to list."),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One job: options, checkpoint, totals, and its failed (or chosen) items."""
    chosen = scope(workspace)
    engine = _engine(chosen)
    job = _job(chosen, job)
    found = engine.jobs.get(job)
    data = found.public(engine.jobs.totals(job))
    data["items"] = engine.jobs.items(job, status or "failed", limit)
    if as_json:
        print_json(data)
        return
    console.print_json(data=data)


@replays_app.command("cancel")
def cancel_job(
    job: str = typer.Argument(..., help="Job id or a unique prefix of it."),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Ask a running job to stop (it stops within a second); it stays resumable."""
    chosen = scope(workspace)
    found = _engine(chosen).jobs.cancel(_job(chosen, job))
    if as_json:
        print_json(found.public())
    else:
        typer.echo(f"replay job {found.id} is {found.status}")
