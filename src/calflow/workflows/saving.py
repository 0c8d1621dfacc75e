"""Storing runs' new places as they finish, not when their whole batch ends.

A batch advances its runs concurrently; one slow or hanging provider call must delay
only its own run. Each run's outcome is handed to a :class:`Saver` the moment it is
known; the saver waits a moment (``LINGER_S``) for the others that finish about then,
stores them in one transaction (``RunStore.save_all``), and what arrives while a save
runs goes into the next one, so a batch costs a few transactions, not one per run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from calflow.workflows.runs import RunStore

Outcome = tuple[Any, dict[str, Any]]

LINGER_S = 0.05
"""How long a save waits for more outcomes after the first: runs of a batch finish
within milliseconds of each other, and a transaction for nearly every run (a round trip
and a commit each on PostgreSQL) cost about 40 % more engine CPU per run there
(``bench/RESULTS.md``); 50 ms is nothing beside a reminder's timing."""

PROGRESS: dict[str, Callable[[list[str]], None]] = {}
"""Called with the ids of the runs a batch (by its lease owner) has just stored: the
scheduler of this process counts runs in flight with it. A batch resumed after a crash
has no entry."""


class Saver:
    """Stores the outcomes given to :meth:`add` in groups, in the background."""

    def __init__(self, runs: RunStore, owner: str) -> None:
        self.runs = runs
        self.owner = owner
        self.saved: set[str] = set()
        self._pending: list[Outcome] = []
        self._arrived = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._loop())

    def add(self, row: Any, values: dict[str, Any]) -> None:
        self._pending.append((row, values))
        self._arrived.set()

    async def _loop(self) -> None:
        while True:
            await self._arrived.wait()
            if not self._closing:  # let the runs that finish together share one save
                await asyncio.sleep(LINGER_S)
            self._arrived.clear()
            group, self._pending = self._pending, []
            if group:
                await asyncio.to_thread(self.runs.save_all, self.owner, group)
                self.saved.update(row.id for row, _ in group)
                told = PROGRESS.get(self.owner)
                if told is not None:
                    told([row.id for row, _ in group])
            if self._closing and not self._pending:
                return

    async def close(self) -> None:
        """Wait until every outcome given so far is stored (a failed save raises here)."""
        self._closing = True
        self._arrived.set()
        await self._task

    def cancel(self) -> None:
        self._task.cancel()


__all__ = ["PROGRESS", "Outcome", "Saver"]
