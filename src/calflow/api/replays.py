"""Replay jobs the API starts run in the server process, in the background.

:class:`ReplayManager` runs :class:`calflow.replay.ReplayEngine` (the same engine as
``calflow replay``, with its jobs table, checkpoints and leases) as asyncio tasks, and
keeps each running job's latest progress for ``GET /api/v1/replays/{id}``. A job whose
task ends or dies is still in the jobs table with its final status, so it can be
resumed from its checkpoint here or with ``calflow replay --resume``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from calflow.api.errors import ApiError
from calflow.errors import CalflowError
from calflow.integrations import IntegrationStore
from calflow.replay.jobs import JobStore
from calflow.settings import Settings

if TYPE_CHECKING:
    from calflow.replay import Progress, ReplayEngine, ReplaySummary

log = logging.getLogger("calflow.api.replays")


class ReplayManager:
    """The replay jobs running in this process, by job id."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._tasks: dict[str, asyncio.Task[ReplaySummary]] = {}
        self._progress: dict[str, dict[str, Any]] = {}

    def running(self, job_id: str) -> bool:
        task = self._tasks.get(job_id)
        return task is not None and not task.done()

    def progress(self, job_id: str) -> dict[str, Any] | None:
        return self._progress.get(job_id)

    def _engine(self, store: IntegrationStore, jobs: JobStore) -> ReplayEngine:
        from calflow.replay.engine import ReplayEngine  # its imports wait for a replay

        return ReplayEngine(store, jobs, settings=self.settings)

    def _record(self, snapshot: Progress) -> None:
        self._progress[snapshot.job] = {
            k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(snapshot).items()
        }

    async def start(
        self,
        store: IntegrationStore,
        jobs: JobStore,
        run: Callable[[ReplayEngine], Coroutine[Any, Any, ReplaySummary]],
    ) -> str:
        """Run ``run(engine)`` in the background once it has created or claimed its job;
        errors before that point (bad options, unknown integration…) are raised here."""
        engine = self._engine(store, jobs)
        task = asyncio.create_task(run(engine))
        # the engine names its job in an attribute (no event to wait on): poll briefly
        while engine.current_job is None and not task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        if engine.current_job is None:
            task.result()  # raises what stopped it
            raise ApiError(503, "UNAVAILABLE", "the replay ended before it started")
        job_id = engine.current_job
        self._tasks[job_id] = task
        task.add_done_callback(lambda t: self._done(job_id, t))
        return job_id

    def progress_fn(self) -> Callable[[Progress], None]:
        return self._record

    def _done(self, job_id: str, task: asyncio.Task[ReplaySummary]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not isinstance(exc, CalflowError):
            log.error("replay job %s crashed: %s: %s", job_id, type(exc).__name__, exc)

    async def aclose(self) -> None:
        """Stop every job running here (each is left resumable: ``interrupted``)."""
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
