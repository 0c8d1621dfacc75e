"""The scheduler: takes due runs in batches and runs each batch as a DBOS workflow.

Every worker (and ``calflow serve`` with its in-process engine) runs one. It takes up
to ``batch`` runs whose step is due (and runs whose holder's lease ran out: a worker
that died), leases them to itself and starts ``calflow.batch`` for them; several
batches may be in flight. What bounds the work in flight is runs, not batches: a run
frees its place the moment its batch stores it (``calflow.workflows.saving``), so a
batch kept open by one hanging provider call holds one place, and a reminder that
falls due meanwhile is taken by the next batch on time. Workspaces share the places:
runs are taken the workspaces' in turn (``RunStore.claim_fair``), and one workspace
holds at most ``WORKSPACE_SHARE`` of them, so another's reminder due now still finds a
place while the first's runs hang on a slow provider. On PostgreSQL workers take
disjoint runs (``SKIP LOCKED``), so adding a worker adds throughput. The dispatcher
nudges the scheduler when it has created runs, so an immediate step does not wait for
the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import Counter

from dbos import DBOS, SetWorkflowID

from calflow.workflows.durable import batch_workflow
from calflow.workflows.saving import PROGRESS
from calflow.workflows.services import Services

log = logging.getLogger("calflow.scheduler")

WORKSPACE_SHARE = 0.75
"""The part of the runs in flight one workspace may hold: the rest stays for the others."""


class Scheduler:
    def __init__(
        self,
        svc: Services,
        owner: str,
        *,
        batch: int = 200,
        in_flight: int = 3,
        max_batches: int = 32,
        interval: float = 0.1,
    ) -> None:
        self.svc = svc
        self.owner = owner
        self.batch = batch
        self.interval = interval
        self.capacity = batch * in_flight
        """Runs taken and not yet stored, at most."""
        self.max_batches = max_batches
        """Batches open at once, at most (each is a DBOS workflow and a task)."""
        self.taken = 0
        self.taken_by: Counter[str] = Counter()
        """Runs taken and not yet stored, by workspace."""
        self.workspace_cap = max(int(self.capacity * WORKSPACE_SHARE), 1)
        self._room = asyncio.Event()
        self._nudge = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def nudge(self) -> None:
        """Runs became due (the dispatcher created or woke some): look now."""
        self._nudge.set()

    def _stored(self, workspaces: list[str]) -> None:
        self.taken = max(self.taken - len(workspaces), 0)
        self.taken_by.subtract(workspaces)
        self.taken_by += Counter()  # drops the workspaces with nothing in flight
        self._room.set()

    def _workspace_room(self, workspace_id: str) -> int:
        return self.workspace_cap - self.taken_by[workspace_id]

    def _free(self) -> int:
        if len(self._tasks) >= self.max_batches:
            return 0
        return min(self.batch, self.capacity - self.taken)

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self._free() <= 0:  # full: wait until a batch stores some of its runs
                self._room.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room.wait(), timeout=self.interval)
                continue
            try:
                taken = await self.take_once()
            except Exception as exc:  # the loop must survive a database hiccup
                log.error("scheduling failed (will retry): %s: %s", type(exc).__name__, exc)
                taken = 0
            if taken < self.batch:  # caught up: wait for a nudge or the next poll
                self._nudge.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._nudge.wait(), timeout=self.interval)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def take_once(self) -> int:
        """Take one batch of due runs (as many as there is room for) and start it."""
        limit = self._free()
        if limit <= 0:
            return 0
        batch_id = secrets.token_hex(8)
        token = f"{self.owner}#{batch_id}"  # the lease names the batch, not only the worker
        lease = self.svc.lease_s
        taken = await asyncio.to_thread(
            self.svc.runs.claim_fair, token, limit, lease, self._workspace_room
        )
        if not taken:
            return 0
        self.taken += len(taken)
        self.taken_by.update(workspace_id for _, workspace_id in taken)
        task = asyncio.create_task(self._run(batch_id, token, taken))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return len(taken)

    async def _run(self, batch_id: str, token: str, taken: list[tuple[str, str]]) -> None:
        run_ids = [run_id for run_id, _ in taken]
        left = dict(taken)  # the runs not stored yet, with their workspace

        def count(stored: list[str]) -> None:
            gone = [left.pop(run_id) for run_id in stored if run_id in left]
            self._stored(gone)

        PROGRESS[token] = count
        try:
            with SetWorkflowID(f"batch-{self.owner}-{batch_id}"):
                handle = await DBOS.start_workflow_async(batch_workflow, token, run_ids)
            await handle.get_result()
        except Exception as exc:  # its runs stay leased and are taken again when it expires
            log.error("batch of %d runs failed: %s: %s", len(run_ids), type(exc).__name__, exc)
        finally:
            PROGRESS.pop(token, None)
            self._stored(list(left.values()))  # the rest: their places are free again


__all__ = ["Scheduler"]
