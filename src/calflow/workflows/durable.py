"""Durable execution of runs: each batch of due runs is one DBOS workflow.

A run is a row (``runs``) that says which step it is at and when that step is due; the
scheduler takes due runs in batches under a lease and runs each batch as one DBOS
workflow (``calflow.batch``) of one step (``calflow.execute``: the executor), so a batch
cut off by a crash is resumed when the worker starts again. Exactly-once per action
call comes from calflow's own rows: the intent (``run_steps`` row ``started``) is
written before the call and the outcome after it, so a re-executed batch skips a
recorded outcome and reconciles a cut-off call (``Action.reconcile``) instead of
sending twice.

Measured on a 2-core machine, one DBOS workflow per run with checkpointed steps cost
12-18 ms of CPU per run, which capped the engine near 40 runs/s; a batch costs DBOS
the same as one run (``bench/RESULTS.md``).
"""

from __future__ import annotations

from dbos import DBOS

from calflow.workflows.executor import execute_batch
from calflow.workflows.services import services


@DBOS.step(name="calflow.execute")
async def _execute(owner: str, run_ids: list[str]) -> dict[str, int]:
    """Advance every run of the batch that ``owner`` still holds; returns counts by status.

    Re-executed as a whole if the process dies inside it: steps whose outcome was
    recorded are not called again, and a call cut off mid-way is reconciled first."""
    return await execute_batch(services(), owner, run_ids)


@DBOS.workflow(name="calflow.batch")
async def batch_workflow(owner: str, run_ids: list[str]) -> dict[str, int]:
    """A batch of due runs taken by one worker (see ``calflow.workflows.scheduler``)."""
    return await _execute(owner, run_ids)


__all__ = ["batch_workflow"]
