"""Runs and their traces: one row per (event, workflow), one row per step attempt.

The DBOS workflow is the durable truth of where a run is; these tables are what
people read (``calflow runs list|show``, the API, the console): status, the step it
waits on and when it is due, and every attempt's rendered input (secrets masked),
port, output, error and timings.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from calflow.db.engine import write_transaction
from calflow.db.models import DEFAULT_WORKSPACE, RunRow, RunStepRow
from calflow.db.types import utcnow
from calflow.errors import NotFoundError

ACTIVE = ("queued", "waiting", "running")
FINAL = ("succeeded", "failed", "cancelled")
_SECRET_KEY = re.compile(
    r"(^|[_-])(pass(word|wd)?|pwd|secret|token|auth|authorization|api[_-]?key|private[_-]?key"
    r"|signature|credentials?)($|[_-])",
    re.I,
)
MASK = "********"


def run_id_for(workspace_id: str, dedupe_key: str, workflow_id: str) -> str:
    """The run's id (and DBOS workflow id): derived, so one event starts a workflow once."""
    digest = hashlib.sha256(f"{workspace_id}\x1f{dedupe_key}\x1f{workflow_id}".encode())
    return "run_" + digest.hexdigest()[:24]


def mask(value: Any, secrets: builtins.list[str] | None = None) -> Any:
    """``value`` with secret-looking keys and known secret values masked."""
    if isinstance(value, dict):
        return {
            k: MASK if _SECRET_KEY.search(str(k)) and v not in (None, "") else mask(v, secrets)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask(v, secrets) for v in value]
    if isinstance(value, str) and secrets:
        for secret in sorted(secrets, key=len, reverse=True):  # the longest first
            if len(secret) >= 4 and secret in value:
                value = value.replace(secret, MASK)
    return value


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


class RunStore:
    """Runs of one workspace."""

    def __init__(self, engine: Engine, workspace_id: str = DEFAULT_WORKSPACE) -> None:
        self.engine = engine
        self.workspace_id = workspace_id

    def create(
        self,
        run_id: str,
        *,
        workflow_id: str,
        workflow_name: str,
        workflow_version: int,
        event_id: str,
        provider: str,
        booking_uid: str,
    ) -> bool:
        """Insert the run (queued) unless it exists; returns whether it was new."""
        values = {
            "id": run_id,
            "workspace_id": self.workspace_id,
            "workflow_id": workflow_id,
            "workflow_name": workflow_name,
            "workflow_version": workflow_version,
            "event_id": event_id,
            "provider": provider,
            "booking_uid": booking_uid[:200],
            "status": "queued",
            "dead": 0,
            "attempt": 1,
            "created_at": utcnow(),
            "updated_at": utcnow(),
        }
        with write_transaction(self.engine) as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = (
                dialect.insert(RunRow)
                .values(**values)
                .on_conflict_do_nothing()
                .returning(RunRow.id)
            )
            return conn.execute(stmt).first() is not None

    def update(self, run_id: str, **values: Any) -> None:
        values["updated_at"] = utcnow()
        if values.get("status") in FINAL:
            values.setdefault("finished_at", utcnow())
            values.setdefault("next_due_at", None)
        if "error" in values and values["error"] is not None:
            values["error"] = _jsonable(values["error"])
        with write_transaction(self.engine) as conn:
            conn.execute(update(RunRow).where(RunRow.id == run_id).values(**values))

    def record_step(
        self,
        run_id: str,
        step_id: str,
        attempt: int,
        *,
        status: str,
        port: str | None = None,
        input: Any = None,
        output: Any = None,
        error: Any = None,
        due_at: datetime | None = None,
        started_at: datetime | None = None,
    ) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(
                insert(RunStepRow).values(
                    run_id=run_id,
                    step_id=step_id,
                    attempt=attempt,
                    status=status,
                    port=port,
                    input=_jsonable(input) if input is not None else None,
                    output=_jsonable(output) if output is not None else None,
                    error=_jsonable(error) if error is not None else None,
                    due_at=due_at,
                    started_at=started_at or utcnow(),
                    finished_at=utcnow(),
                )
            )

    def start_step(
        self, run_id: str, step_id: str, attempt: int, input: Any, started_at: datetime
    ) -> int:
        """Record that an attempt is about to call its action (the intent); returns its row."""
        with write_transaction(self.engine) as conn:
            row = conn.execute(
                insert(RunStepRow)
                .values(run_id=run_id, step_id=step_id, attempt=attempt, status="started",
                        input=_jsonable(input) if input is not None else None,
                        started_at=started_at)
                .returning(RunStepRow.id)
            ).scalar_one()  # fmt: skip
            return int(row)

    def finish_step(
        self, row_id: int, *, status: str, port: str | None, output: Any, error: Any
    ) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(RunStepRow)
                .where(RunStepRow.id == row_id)
                .values(status=status, port=port,
                        output=_jsonable(output) if output is not None else None,
                        error=_jsonable(error) if error is not None else None,
                        finished_at=utcnow())
            )  # fmt: skip

    def unfinished(self, run_id: str, step_id: str) -> tuple[int, datetime] | None:
        """The latest attempt of a step that began calling its action and never finished
        (its process died in between): (row id, when it began)."""
        with Session(self.engine) as session:
            row = session.execute(
                select(RunStepRow.id, RunStepRow.started_at)
                .where(RunStepRow.run_id == run_id, RunStepRow.step_id == step_id,
                       RunStepRow.status == "started")
                .order_by(RunStepRow.id.desc())
            ).first()  # fmt: skip
            return None if row is None else (int(row.id), row.started_at)

    def recorded(self, run_id: str, step_id: str, attempt: int) -> dict[str, Any] | None:
        """The outcome already recorded for this very attempt, if any: its process died
        after recording it and before the engine's checkpoint, so it must not run again."""
        with Session(self.engine) as session:
            row = session.scalars(
                select(RunStepRow)
                .where(RunStepRow.run_id == run_id, RunStepRow.step_id == step_id,
                       RunStepRow.attempt == attempt,
                       RunStepRow.status.in_(("succeeded", "failed")))
                .order_by(RunStepRow.id.desc())
            ).first()  # fmt: skip
            if row is None:
                return None
            error = row.error or {}
            return {"success": row.status == "succeeded", "port": row.port,
                    "data": (row.output or {}).get("data"), "code": error.get("code"),
                    "message": error.get("message"), "retryable": False,
                    "recorded": True}  # fmt: skip

    def active_for_booking(self, provider: str, booking_uid: str) -> builtins.list[RunRow]:
        """Runs of a booking that are not finished (queued, waiting or running)."""
        with Session(self.engine) as session:
            return list(
                session.scalars(
                    select(RunRow).where(
                        RunRow.workspace_id == self.workspace_id,
                        RunRow.provider == provider,
                        RunRow.booking_uid == booking_uid[:200],
                        RunRow.status.in_(ACTIVE),
                    )
                )
            )

    def row(self, run_id: str) -> RunRow:
        with Session(self.engine) as session:
            found = session.scalars(
                select(RunRow).where(RunRow.workspace_id == self.workspace_id, RunRow.id == run_id)
            ).first()
            if found is None:
                raise NotFoundError(f"no run {run_id!r}")
            session.expunge(found)
            return found

    def list(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        booking_uid: str | None = None,
        dead: bool | None = None,
        limit: int = 100,
        after: tuple[datetime, str] | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """Runs, newest first; ``after`` (created_at, id) pages on from the last run of a
        previous page (keyset pagination, in this list's order)."""
        query = select(RunRow).where(RunRow.workspace_id == self.workspace_id)
        if after is not None:
            at, last_id = after
            query = query.where(
                (RunRow.created_at < at) | ((RunRow.created_at == at) & (RunRow.id > last_id))
            )
        if workflow:
            query = query.where(
                (RunRow.workflow_name == workflow) | (RunRow.workflow_id == workflow)
            )
        if status:
            query = query.where(RunRow.status == status)
        if booking_uid:
            query = query.where(RunRow.booking_uid == booking_uid[:200])
        if dead is not None:
            query = query.where(RunRow.dead == int(dead))
        query = query.order_by(RunRow.created_at.desc(), RunRow.id).limit(limit)
        with Session(self.engine) as session:
            return [_public(r) for r in session.scalars(query)]

    def get(self, run_id: str) -> dict[str, Any]:
        """A run with every step attempt, oldest first."""
        row = self.row(run_id)
        out = _public(row)
        with Session(self.engine) as session:
            steps = session.scalars(
                select(RunStepRow).where(RunStepRow.run_id == run_id).order_by(RunStepRow.id)
            )
            out["steps"] = [
                {
                    "step": s.step_id,
                    "attempt": s.attempt,
                    "status": s.status,
                    "port": s.port,
                    "input": s.input,
                    "output": s.output,
                    "error": s.error,
                    "due_at": s.due_at.isoformat() if s.due_at else None,
                    "started_at": s.started_at.isoformat(),
                    "finished_at": s.finished_at.isoformat() if s.finished_at else None,
                    "duration_ms": round((s.finished_at - s.started_at).total_seconds() * 1000, 1)
                    if s.finished_at
                    else None,
                }
                for s in steps
            ]
        return out


def _public(row: RunRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "workflow": row.workflow_name,
        "workflow_id": row.workflow_id,
        "workflow_version": row.workflow_version,
        "event_id": row.event_id,
        "provider": row.provider,
        "booking_uid": row.booking_uid,
        "status": row.status,
        "dead": bool(row.dead),
        "current_step": row.current_step,
        "next_due_at": row.next_due_at.isoformat() if row.next_due_at else None,
        "error": row.error,
        "cancel_reason": row.cancel_reason,
        "attempt": row.attempt,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
    }
