"""``calflow workflows``, ``calflow runs`` and ``calflow worker``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from calflow.cli.output import console, err_console, print_json, table
from calflow.cli.scope import Scope, scope, workspace_option
from calflow.errors import FieldError, NotFoundError, ValidationError

if TYPE_CHECKING:
    from calflow.workflows.store import WorkflowStore

workflows_app = typer.Typer(help="Workflow definitions (YAML or JSON).", no_args_is_help=True)
runs_app = typer.Typer(help="Workflow runs and their step traces.", no_args_is_help=True)


def _stores(workspace: str) -> tuple[Any, Any]:
    found = scope(workspace)
    return found.workflows(), found.runs()


def _workflow(found: Scope, ref: str) -> str:
    from calflow.db.refs import WORKFLOW

    return found.ref(WORKFLOW, ref)


def _documents(path: Path) -> list[tuple[str, Any]]:
    from calflow.workflows.definition import load_text

    files = sorted(path.glob("*.y*ml")) + sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise ValidationError(f"{path} holds no .yaml, .yml or .json workflow files")
    docs = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValidationError(f"cannot read {file}: {exc.strerror}") from exc
        docs.append((str(file), load_text(text, str(file))))
    return docs


@workflows_app.command("apply")
def apply(
    paths: list[Path] = typer.Argument(None, help="Workflow files or directories of them."),
    builtin: list[str] = typer.Option(
        None,
        "--builtin",
        help="A ready-made workflow by name, or 'all' (see `workflows builtins`).",
    ),
    allow_missing_integrations: bool = typer.Option(
        False,
        "--allow-missing-integrations",
        help="Apply even if a step names an integration not created yet (a warning).",
    ),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create or update workflows by name (every file is checked before any is applied)."""
    from calflow.workflows import builtin as builtins

    workflows, _ = _stores(workspace)
    docs = [doc for path in paths or [] for doc in _documents(path)]
    chosen = builtins.names() if "all" in (builtin or []) else list(builtin or [])
    docs += [(f"built-in {name}", builtins.load(name)) for name in chosen]
    if not docs:
        raise ValidationError("name workflow files or directories, or --builtin NAME|all")
    checked = _check_all(workflows, docs, allow_missing_integrations)  # all valid, or none
    results = []
    for (where, raw), warnings in zip(docs, checked, strict=True):
        stored, outcome = workflows.apply(raw)
        shown = [{"field": w.path, "message": w.message} for w in warnings]
        results.append({"name": stored.name, "id": stored.id, "version": stored.version,
                        "result": outcome, "warnings": shown})  # fmt: skip
        if not as_json:
            for w in warnings:
                err_console.print(f"warning: {where}: {w.path}: {w.message}", highlight=False)
    if as_json:
        print_json(results)
        return
    for r in results:
        console.print(f"{r['result']}: {r['name']} ({r['id']}, version {r['version']})")


def _check_all(
    workflows: WorkflowStore, docs: list[tuple[str, Any]], allow_missing: bool
) -> list[tuple[FieldError, ...]]:
    """Each document's warnings; a ``ValidationError`` listing every invalid document's
    problems (each under its file when there are several)."""
    from calflow.workflows.integration_refs import MISSING

    warnings: list[tuple[FieldError, ...]] = []
    failed: list[tuple[str, ValidationError]] = []
    for where, raw in docs:
        try:
            warnings.append(workflows.check(raw, allow_missing_integrations=allow_missing).warnings)
        except ValidationError as exc:
            failed.append((where, exc))
    if not failed:
        return warnings
    hint = ""
    if any(e.rule == MISSING for _, exc in failed for e in exc.errors):
        hint = " (create the integrations first, or apply with --allow-missing-integrations)"
    if len(failed) == 1:
        where, only = failed[0]
        raise ValidationError(f"{where}: {only.message}{hint}", only.errors)
    problems = [
        FieldError(f"{where}: {e.path}", e.message, e.rule)
        for where, exc in failed
        for e in exc.errors or [FieldError("", exc.message)]
    ]
    raise ValidationError(f"{len(failed)} of {len(docs)} workflows are invalid{hint}", problems)


@workflows_app.command("list")
def list_workflows(
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every workflow with its trigger and steps."""
    workflows, _ = _stores(workspace)
    rows = [w.to_dict() for w in workflows.list()]
    if as_json:
        print_json(rows)
        return
    table(
        "workflows",
        ["name", "id", "enabled", "version", "trigger", "steps"],
        [
            (r["name"], r["id"], "yes" if r["enabled"] else "no", r["version"],
             ",".join(_as_list(r["trigger"]["kinds"])), " → ".join(r["steps"]))
            for r in rows
        ],
    )  # fmt: skip


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@workflows_app.command("show")
def show(
    ref: str = typer.Argument(..., help="Workflow name, id or id prefix."),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One workflow's definition."""
    found = scope(workspace)
    data = found.workflows().get(_workflow(found, ref)).to_dict()
    if as_json:
        print_json(data)
    else:
        console.print_json(data=data)


def _toggle(ref: str, enabled: bool, workspace: str, as_json: bool) -> None:
    from calflow.workflows.lifecycle import set_enabled, toggle_message

    found = scope(workspace)
    data = set_enabled(found.workflows(), found.runs(), _workflow(found, ref), enabled)
    if as_json:
        print_json(data)
    else:
        console.print(toggle_message(data), highlight=False)


@workflows_app.command("enable")
def enable(
    ref: str = typer.Argument(..., help="Workflow name, id or id prefix."),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Start matching events again."""
    _toggle(ref, True, workspace, as_json)


@workflows_app.command("disable")
def disable(
    ref: str = typer.Argument(..., help="Workflow name, id or id prefix."),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Stop matching new events; the runs already started keep waiting and run when due
    (the output and `runs_waiting` say how many)."""
    _toggle(ref, False, workspace, as_json)


@workflows_app.command("delete")
def delete(
    ref: str = typer.Argument(..., help="Workflow name, id or id prefix."),
    keep_runs: bool = typer.Option(
        False, "--keep-runs", help="Let its unfinished runs go on instead of cancelling them."
    ),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Delete a workflow and cancel its unfinished runs (reason "workflow deleted"), or
    keep them with --keep-runs; finished runs stay visible."""
    from calflow.workflows.lifecycle import delete_message, delete_workflow

    found = scope(workspace)
    data = delete_workflow(
        found.workflows(), found.runs(), _workflow(found, ref), keep_runs=keep_runs
    )
    if as_json:
        print_json({"deleted": data["name"], **data})
    else:
        console.print(delete_message(data), highlight=False)


@workflows_app.command("builtins")
def list_builtins(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The ready-made workflows (they use integrations named sms and email)."""
    from calflow.workflows import builtin as builtins

    rows = [{"name": n, "description": builtins.load(n).get("description", "")}
            for n in builtins.names()]  # fmt: skip
    if as_json:
        print_json(rows)
        return
    table(
        "built-in workflows", ["name", "description"], [(r["name"], r["description"]) for r in rows]
    )


@workflows_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of a workflow definition."""
    from calflow.workflows.definition import schema as load

    print_json(load())


@runs_app.command("list")
def list_runs(
    workflow: str = typer.Option(None, "--workflow", help="Workflow name, id or id prefix."),
    status: str = typer.Option(None, "--status", help="queued, waiting, running, succeeded…"),
    booking: str = typer.Option(None, "--booking", help="Booking uid."),
    dead: bool = typer.Option(False, "--dead", help="Only the dead-letter list."),
    limit: int = typer.Option(100, "--limit", min=1, max=10_000, help="How many, newest first."),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Runs, newest first."""
    found = scope(workspace)
    runs = found.runs()
    if workflow:
        with contextlib.suppress(NotFoundError):  # a deleted workflow's runs keep its name
            workflow = _workflow(found, workflow)
    rows = runs.list(workflow=workflow, status=status, booking_uid=booking,
                     dead=True if dead else None, limit=limit)  # fmt: skip
    if as_json:
        print_json(rows)
        return
    table(
        "runs",
        ["id", "workflow", "status", "step", "due", "booking"],
        [
            (r["id"], r["workflow"], r["status"] + (" (dead)" if r["dead"] else ""),
             r["current_step"] or "", r["next_due_at"] or "", r["booking_uid"])
            for r in rows
        ],
    )  # fmt: skip


@runs_app.command("show")
def show_run(
    run_id: str = typer.Argument(..., help="Run id (run_…) or a unique prefix of it."),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One run: every step attempt (input with secrets masked, port, output, error, timing)
    and the steps still ahead with their due times."""
    from calflow.db.refs import RUN
    from calflow.workflows.upcoming import upcoming

    found = scope(workspace)
    data = found.runs().get(found.ref(RUN, run_id))
    data["upcoming"] = upcoming(data, found.workflows(), found.inbox())
    if as_json:
        print_json(data)
    else:
        console.print_json(json.dumps(data, default=str))


@runs_app.command("retry")
def retry(
    run_id: str = typer.Argument(..., help="A failed run's id or a unique prefix of it."),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Re-run a failed run from the step that failed (with the workflow as it is now)."""
    from calflow.db.refs import RUN
    from calflow.workflows.retry import retry_run

    found = scope(workspace)
    data = retry_run(found.ref(RUN, run_id), store=found.store)
    if as_json:
        print_json(data)
    else:
        console.print(
            f"retrying {data['run']} from step {data['from_step']} (attempt {data['attempt']})"
        )


def worker(
    concurrency: int = typer.Option(
        0,
        "--concurrency",
        min=0,
        help="Due runs this worker takes per batch (0: the default, 200).",
    ),
    worker_id: str = typer.Option(None, "--id", help="Stable worker id (default: host name)."),
) -> None:
    """Run workflows: dispatch stored events and execute runs (scale out on PostgreSQL)."""
    from calflow.home import warn_loose_modes
    from calflow.keys.watch import KeyWatch
    from calflow.logs import configure as configure_logs
    from calflow.settings import get_settings
    from calflow.workflows.children import PARENT_ENV, watch_parent, yield_cpu_to_parent
    from calflow.workflows.engine import WorkflowEngine, default_executor_id

    yield_cpu_to_parent()
    configure_logs(get_settings().log_level, get_settings().log_format)
    if not os.environ.get(PARENT_ENV):  # a child of `calflow serve`: the server warned
        warn_loose_modes(get_settings().home)

    async def go() -> None:
        engine = WorkflowEngine(concurrency=concurrency,
                                executor_id=worker_id or default_executor_id())  # fmt: skip
        async with engine:
            console.print(f"calflow worker {engine.executor_id} running (Ctrl-C to stop)")
            stop = asyncio.Event()
            with contextlib.suppress(NotImplementedError):  # SIGTERM: stop cleanly
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            parent_gone = asyncio.create_task(watch_parent())
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait([parent_gone, stopped], return_when=asyncio.FIRST_COMPLETED)
            parent_gone.cancel()
            stopped.cancel()

    # the keys are checked (and reported to `calflow keys`) before any run is taken
    with KeyWatch.for_process("worker", worker_id or default_executor_id()):
        try:
            asyncio.run(go())
        except KeyboardInterrupt:
            console.print("worker stopped")
