"""What the engine tells the log and the metrics about each step and each run.

Each timed step's lateness (started after its due time, first attempt) is observed.
One line per step outcome on ``calflow.runs`` at INFO: the run, workflow, step, app,
action, attempt, the port the action answered on (or ``throttled``, ``retry``), its
error code and the call's time. Never the step's input or output: they hold the
booking's attendees, phone numbers and whatever the provider answered.
"""

from __future__ import annotations

import logging
from typing import Any

from calflow.logs import fields
from calflow.metrics import LATENESS_SECONDS, RUNS, STEP_SECONDS, STEPS
from calflow.workflows.definition import StepDef, WorkflowDef

__all__ = ["FINISHED", "run_stopped", "step_late", "step_outcome"]

log = logging.getLogger("calflow.runs")
FINISHED = ("succeeded", "failed", "cancelled")


def _outcome(result: dict[str, Any]) -> str:
    if result.get("throttled") is not None:
        return "throttled"
    if result.get("retryable"):
        return "retry"
    return str(result.get("port") or "none")


def step_outcome(
    row: Any,
    wf: WorkflowDef,
    step: StepDef,
    result: dict[str, Any],
    attempt: int,
    seconds: float | None,
) -> None:
    """Count and log one step's outcome (``seconds``: the action call's, None if skipped)."""
    outcome = _outcome(result)
    STEPS.labels(step.app, step.action, outcome).inc()
    if seconds is not None and outcome != "throttled":
        STEP_SECONDS.labels(step.app, step.action).observe(seconds)
    if not log.isEnabledFor(logging.INFO):
        return
    ms = None if seconds is None else round(seconds * 1000, 1)
    log.info(
        "run %s %s step %s → %s", row.id, wf.name, step.id, outcome,
        extra=fields(run=row.id, workflow=wf.name, step=step.id, app=step.app,
                     action=step.action, port=outcome, attempt=attempt,
                     code=result.get("code"), ms=ms, workspace=row.workspace_id),
    )  # fmt: skip


def step_late(step: StepDef, seconds: float) -> None:
    """Observe how late a timed step starts its first attempt (early counts as 0)."""
    LATENESS_SECONDS.labels(step.app, step.action).observe(max(0.0, seconds))


def run_stopped(row: Any, status: str) -> None:
    """Count a run that finished (``status`` succeeded, failed or cancelled); a run that
    waits is not counted, and logs at DEBUG."""
    if status in FINISHED:
        RUNS.labels(status).inc()
        log.info("run %s %s", row.id, status, extra=fields(run=row.id, status=status))
    else:
        log.debug("run %s %s", row.id, status, extra=fields(run=row.id, status=status))
