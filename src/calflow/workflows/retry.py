"""``calflow runs retry``: re-run a dead-lettered run from the step that failed.

The retry is a new DBOS workflow (``<run id>#<attempt>``) enqueued on the runs queue
with the workflow's current definition (so a fixed template or integration takes
effect), the run's event, and the outputs of the steps that had already succeeded;
any running worker or ``calflow serve`` picks it up. Steps before the failed one are
not sent again.
"""

from __future__ import annotations

from typing import Any

from dbos import DBOSClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from calflow.db.models import RunStepRow
from calflow.errors import ConfigError, NotFoundError
from calflow.events.inbox import Inbox
from calflow.integrations import IntegrationStore
from calflow.settings import Settings, get_settings
from calflow.workflows.dispatch import RUNS_QUEUE
from calflow.workflows.engine import APP_VERSION, dbos_config
from calflow.workflows.runs import RunStore
from calflow.workflows.store import WorkflowStore


def _succeeded_outputs(store: IntegrationStore, run_id: str, until: str) -> dict[str, Any]:
    outputs: dict[str, Any] = {}
    with Session(store.engine) as session:
        for s in session.scalars(
            select(RunStepRow).where(RunStepRow.run_id == run_id).order_by(RunStepRow.id)
        ):
            if s.step_id == until:
                break
            if s.status == "succeeded":
                data = (s.output or {}).get("data")
                outputs[s.step_id] = {"port": s.port, "data": data, "success": True, "code": None}
    return outputs


def _next_attempt(store: IntegrationStore, run_id: str, step_id: str) -> int:
    with Session(store.engine) as session:
        last = session.scalar(
            select(func.max(RunStepRow.attempt)).where(
                RunStepRow.run_id == run_id, RunStepRow.step_id == step_id
            )
        )
    return int(last or 0) + 1


def retry_run(
    run_id: str, store: IntegrationStore | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    settings = settings or get_settings()
    store = store or IntegrationStore.default(settings)
    runs = RunStore(store.engine, store.workspace_id)
    row = runs.row(run_id)
    if row.status != "failed":
        raise ConfigError(f"run {run_id} is {row.status}; only failed runs can be retried")
    if not row.workflow_id:
        raise ConfigError(
            f"run {run_id} is a direct action call ({row.workflow_name}), not a workflow run; "
            "call the action again"
        )
    try:
        workflow = WorkflowStore(store.engine, store.workspace_id).get(row.workflow_id)
    except NotFoundError:
        raise ConfigError(f"run {run_id}'s workflow {row.workflow_name!r} was deleted") from None
    step = row.current_step or workflow.definition.steps[0].id
    if step not in {s.id for s in workflow.definition.steps}:
        step = workflow.definition.steps[0].id
    event = Inbox(store.engine, store.workspace_id).get(row.event_id)["event"]
    attempt = row.attempt + 1
    dbos_id = f"{run_id}#{attempt}"
    client = DBOSClient(system_database_url=dbos_config(settings)["system_database_url"])
    try:
        client.enqueue(
            {"workflow_name": "calflow.run", "queue_name": RUNS_QUEUE, "workflow_id": dbos_id,
             "app_version": APP_VERSION},
            run_id, dict(workflow.definition.source), event, step,
            _succeeded_outputs(store, run_id, step), _next_attempt(store, run_id, step),
        )  # fmt: skip
    finally:
        client.destroy()
    runs.update(run_id, status="queued", dead=0, error=None, attempt=attempt, finished_at=None,
                workflow_version=workflow.version)  # fmt: skip
    return {"run": run_id, "from_step": step, "workflow_id": dbos_id, "attempt": attempt}
