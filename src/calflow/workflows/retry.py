"""``calflow runs retry``: re-run a dead-lettered run from the step that failed.

The run is queued again at the failed step with the workflow's current definition (so
a fixed template or integration takes effect), the booking as the run knew it, and the
outputs of the steps that had already succeeded; any running worker or ``calflow
serve`` takes it. Steps before the failed one are not sent again, and the failed
step's attempts continue their numbering.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from calflow.db.engine import write_transaction
from calflow.db.models import RunRow, RunStepRow
from calflow.db.types import utcnow
from calflow.errors import ConfigError, NotFoundError
from calflow.events.inbox import Inbox
from calflow.events.model import BookingEvent
from calflow.integrations import IntegrationStore
from calflow.settings import Settings, get_settings
from calflow.workflows.executor import initial_state
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
    attempt = row.attempt + 1
    first = _next_attempt(store, run_id, step)
    state = dict(row.state or {})
    if not state:  # a run from before runs kept their state: start from its event
        event = Inbox(store.engine, store.workspace_id).get(row.event_id)["event"]
        state = initial_state(BookingEvent.from_dict(event))
    state.update(index=workflow.definition.index(step), attempt=first, first=first,
                 outputs=_succeeded_outputs(store, run_id, step))  # fmt: skip
    now = utcnow()
    with write_transaction(store.engine) as conn:
        RunStore.keep_version(conn, workflow.id, workflow.version, dict(workflow.definition.source))
        changed = conn.execute(
            update(RunRow)
            .where(RunRow.id == run_id, RunRow.status == "failed")
            .values(status="queued", dead=0, error=None, attempt=attempt, finished_at=None,
                    workflow_version=workflow.version, current_step=step, state=state,
                    next_due_at=now, updated_at=now)
        ).rowcount  # fmt: skip
    if not changed:
        raise ConfigError(f"run {run_id} changed meanwhile; look at it again")
    return {"run": run_id, "from_step": step, "attempt": attempt, "first_attempt": first}
