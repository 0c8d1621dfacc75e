"""Deleting and disabling a workflow, and what becomes of the runs it already started.

- Deleting cancels the workflow's unfinished runs (queued, waiting or running) with the
  reason ``workflow deleted``, so a deleted reminder is never sent; ``keep_runs`` leaves
  them to finish with the version they started with.
- Disabling stops new runs only: the runs already started go on waiting and run when
  due (cancel them by deleting the workflow). Enabling says how many are waiting too.

``calflow workflows delete|disable|enable``, the REST API and the console say so with
``runs_cancelled``, ``runs_kept`` and ``runs_waiting``.
"""

from __future__ import annotations

from typing import Any

from calflow.workflows.runs import RunStore
from calflow.workflows.store import WorkflowStore

DELETED_REASON = "workflow deleted"


def delete_workflow(
    workflows: WorkflowStore, runs: RunStore, ref: str, *, keep_runs: bool = False
) -> dict[str, Any]:
    """Delete the workflow ``ref`` (id or name); cancel its unfinished runs unless
    ``keep_runs``. Returns ``{"id", "name", "runs_cancelled", "runs_kept"}``."""
    gone = workflows.delete(ref)  # first: the dispatcher starts no new run of it
    cancelled = kept = 0
    if keep_runs:
        kept = runs.count_active(gone.id)
    else:
        cancelled = runs.cancel_active(gone.id, DELETED_REASON)
    return {"id": gone.id, "name": gone.name, "runs_cancelled": cancelled, "runs_kept": kept}


def set_enabled(
    workflows: WorkflowStore, runs: RunStore, ref: str, enabled: bool
) -> dict[str, Any]:
    """Enable or disable ``ref``; the workflow's document plus ``runs_waiting``, its runs
    already started that are not finished (a disabled workflow's runs go on)."""
    stored = workflows.set_enabled(ref, enabled)
    return {**stored.to_dict(), "runs_waiting": runs.count_active(stored.id)}


def toggle_message(data: dict[str, Any]) -> str:
    """One line for people: ``disabled: sms-reminder-24h (3 runs already started keep
    waiting and run when due; delete the workflow to cancel them)``."""
    waiting = int(data.get("runs_waiting") or 0)
    runs = f"{waiting} run{'s' if waiting != 1 else ''}"
    if data["enabled"]:
        return f"enabled: {data['name']}" + (f" ({runs} of it waiting)" if waiting else "")
    if not waiting:
        return f"disabled: {data['name']} (no run of it is waiting)"
    verbs = ("keeps", "runs", "it") if waiting == 1 else ("keep", "run", "them")
    return (
        f"disabled: {data['name']} ({runs} already started {verbs[0]} waiting and "
        f"{verbs[1]} when due; delete the workflow to cancel {verbs[2]})"
    )


def delete_message(data: dict[str, Any]) -> str:
    """One line for people: ``deleted: x (2 waiting runs cancelled: workflow deleted)``."""
    if data["runs_kept"]:
        n = data["runs_kept"]
        return f"deleted: {data['name']} ({n} run{'s' if n != 1 else ''} kept; they go on)"
    n = data["runs_cancelled"]
    if not n:
        return f"deleted: {data['name']} (no run of it was waiting)"
    return f"deleted: {data['name']} ({n} run{'s' if n != 1 else ''} cancelled: {DELETED_REASON})"


__all__ = ["DELETED_REASON", "delete_message", "delete_workflow", "set_enabled", "toggle_message"]
