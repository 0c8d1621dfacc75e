"""Intent and outcome rows of action calls, written in groups.

Every action call writes a row before it calls (the intent) and completes it after
(the outcome): that is what keeps a call exactly once across crashes, so neither
write may be skipped or delayed past its call. But the runs of a batch call at the
same time, and one transaction per row made the SQLite writer lock and the commit
the engine's largest cost. Here concurrent writes queue up and go in one
transaction: each caller still returns only once its own row is committed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, insert, select, update

from calflow.db.engine import write_transaction
from calflow.db.models import RunStepRow
from calflow.db.types import utcnow


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str)) if value is not None else None


@dataclass
class _Op:
    kind: str  # "start" or "finish"
    values: dict[str, Any]
    done: asyncio.Future[Any]


_FINISH = (
    update(RunStepRow)
    .where(RunStepRow.id == bindparam("row_id"))
    .values(
        status=bindparam("status"),
        port=bindparam("port"),
        output=bindparam("output"),
        error=bindparam("error"),
        finished_at=bindparam("finished_at"),
    )
)


@dataclass
class StepLog:
    """Group-committed intent and outcome rows, for one event loop."""

    engine: Engine
    _queue: list[_Op] = field(default_factory=list)
    _flushing: bool = False

    async def start(
        self, run_id: str, step_id: str, attempt: int, input: Any, started_at: datetime
    ) -> int:
        """Record that an attempt is about to call its action; returns the row's id."""
        values = {"run_id": run_id, "step_id": step_id, "attempt": attempt, "status": "started",
                  "input": _json(input), "started_at": started_at}  # fmt: skip
        return int(await self._submit("start", values))

    async def finish(
        self, row_id: int, *, status: str, port: str | None, output: Any, error: Any
    ) -> None:
        """Record an attempt's outcome on its intent row."""
        values = {"row_id": row_id, "status": status, "port": port, "output": _json(output),
                  "error": _json(error), "finished_at": utcnow()}  # fmt: skip
        await self._submit("finish", values)

    async def _submit(self, kind: str, values: dict[str, Any]) -> Any:
        op = _Op(kind, values, asyncio.get_running_loop().create_future())
        self._queue.append(op)
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        return await op.done

    async def _flush(self) -> None:
        try:
            while self._queue:
                await asyncio.sleep(0)  # let the callers of this turn queue up too
                ops, self._queue = self._queue, []
                try:
                    ids = await asyncio.to_thread(self._write, ops)
                except Exception as exc:
                    for op in ops:
                        if not op.done.done():
                            op.done.set_exception(exc)
                    continue
                for op, row_id in zip(ops, ids, strict=True):
                    if not op.done.done():
                        op.done.set_result(row_id)
        finally:
            self._flushing = False

    def _write(self, ops: Sequence[_Op]) -> list[int | None]:
        starts = [op.values for op in ops if op.kind == "start"]
        finishes = [op.values for op in ops if op.kind == "finish"]
        ids: list[int] = []
        with write_transaction(self.engine) as conn:
            if starts:
                stmt = insert(RunStepRow).returning(RunStepRow.id, sort_by_parameter_order=True)
                ids = [int(i) for i in conn.execute(stmt, starts).scalars()]
            if finishes:
                conn.execute(_FINISH, finishes)
        it = iter(ids)
        return [next(it) if op.kind == "start" else None for op in ops]


def histories(engine: Engine, run_ids: Sequence[str]) -> dict[str, list[Any]]:
    """Every step row of these runs, by run, oldest first (one query for a batch)."""
    found: dict[str, list[Any]] = {}
    unique = sorted(set(run_ids))
    columns = (RunStepRow.id, RunStepRow.run_id, RunStepRow.step_id, RunStepRow.attempt,
               RunStepRow.status, RunStepRow.port, RunStepRow.output, RunStepRow.error,
               RunStepRow.started_at)  # fmt: skip
    with engine.connect() as conn:
        for start in range(0, len(unique), 500):
            rows = conn.execute(
                select(*columns)
                .where(RunStepRow.run_id.in_(unique[start : start + 500]))
                .order_by(RunStepRow.id)
            )
            for row in rows:
                found.setdefault(row.run_id, []).append(row)
    return found


def seen_in(rows: Sequence[Any], step_id: str, attempt: int) -> dict[str, Any]:
    """What earlier executions left for this step: the outcome of this very attempt if
    recorded, and the latest intent that never finished (see ``RunStore.history``)."""
    found: dict[str, Any] = {"recorded": None, "unfinished": None}
    for row in reversed(rows):
        if row.step_id != step_id:
            continue
        if row.attempt == attempt and row.status in ("succeeded", "failed"):
            if found["recorded"] is None:
                error = row.error or {}
                found["recorded"] = {
                    "success": row.status == "succeeded", "port": row.port,
                    "data": (row.output or {}).get("data"), "code": error.get("code"),
                    "message": error.get("message"), "retryable": False, "recorded": True,
                }  # fmt: skip
        elif row.status == "started" and found["unfinished"] is None:
            found["unfinished"] = (int(row.id), row.started_at)
    return found
