"""``calflow serve --workers N``: worker processes beside the server, on one machine.

One Python process runs on one core at a time (the GIL), and an engine that receives,
dispatches and calls providers in one process leaves the machine's other cores idle.
With ``--workers N`` the server keeps the webhook receiver, API and console, and N
``calflow worker`` child processes run the workflows (the same as separate workers on
PostgreSQL; on SQLite they share ``CALFLOW_HOME``, one dispatching at a time). Each
child has a stable id (``<host>-w<i>``), so a child that dies is restarted under the
same id and resumes its cut-off batch; children stop with the server, and exit by
themselves if the server is killed (they watch their parent). Children run at a lower
CPU priority than the server (``CHILD_NICENESS``): on busy cores the receiver answers
first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
from types import TracebackType

log = logging.getLogger("calflow.children")
PARENT_ENV = "CALFLOW_PARENT_PID"
RESTART_DELAY_S = 1.0


class WorkerChildren:
    """Starts, watches and stops the child workers."""

    def __init__(self, count: int, base_id: str) -> None:
        self.ids = [f"{base_id}-w{i}" for i in range(1, count + 1)]
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False

    def _spawn(self, worker_id: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, PARENT_ENV: str(os.getpid())}
        cmd = [sys.executable, "-m", "calflow.cli.main", "worker", "--id", worker_id]
        return subprocess.Popen(cmd, env=env)  # noqa: S603 - our own interpreter and module

    async def __aenter__(self) -> WorkerChildren:
        for worker_id in self.ids:
            self._procs[worker_id] = self._spawn(worker_id)
        self._watch = asyncio.create_task(self._supervise())
        return self

    async def _supervise(self) -> None:
        while not self._stopping:
            await asyncio.sleep(RESTART_DELAY_S)
            for worker_id, proc in list(self._procs.items()):
                if proc.poll() is not None and not self._stopping:
                    log.error("worker %s exited (%s); restarting it", worker_id, proc.returncode)
                    self._procs[worker_id] = self._spawn(worker_id)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs.values():
            try:
                await asyncio.to_thread(proc.wait, 15)
            except subprocess.TimeoutExpired:
                proc.kill()


CHILD_NICENESS = 5
"""How much lower a child worker's CPU priority is than its server's: when the cores
are busy, the kernel runs the receiver first, so webhooks are answered quickly while
the workers catch up (the inbox holds the work)."""


def yield_cpu_to_parent() -> None:
    """In a child worker: lower this process's CPU priority below the server's."""
    if os.environ.get(PARENT_ENV):
        with contextlib.suppress(OSError):  # not permitted or not supported: run as is
            os.nice(CHILD_NICENESS)


async def watch_parent(interval_s: float = 1.0) -> None:
    """In a child worker: return when the server that started it is gone."""
    parent = int(os.environ.get(PARENT_ENV) or 0)
    if not parent:
        await asyncio.Event().wait()
    while os.getppid() == parent:  # noqa: ASYNC110 - polling: no event tells of a parent's death
        await asyncio.sleep(interval_s)


__all__ = ["CHILD_NICENESS", "PARENT_ENV", "WorkerChildren", "watch_parent", "yield_cpu_to_parent"]
