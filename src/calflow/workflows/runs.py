"""Runs and their traces: one row per (event, workflow), one row per step attempt.

A run's row is the durable truth of where it is: its status, the step it waits on and
when that step is due (``next_due_at``), its place (``state``) and, while a worker
advances it, that worker's lease (``lease_owner``, ``lease_until``). Workers take due
runs under a lease (:meth:`RunStore.claim`), and a batch stores each run's new place
as the run stops (:meth:`RunStore.save_all`); a lease that runs out (a worker that
died) makes the run due again. DBOS only resumes the batch a crash cut off. The step
rows (``run_steps``) are the intent and outcome of every attempt, which keep each
action call exactly once, and what people read (``calflow runs list|show``, the API,
the console): every attempt's rendered input (secrets masked), port, output, error
and timings.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from calflow.db.engine import write_transaction
from calflow.db.models import DEFAULT_WORKSPACE, RunRow, RunStepRow, WorkflowVersionRow
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

    # --- scheduling: runs are due rows, taken in batches under a lease ---------------

    @staticmethod
    def new_row(
        run_id: str,
        workspace_id: str,
        *,
        workflow_id: str,
        workflow_name: str,
        workflow_version: int,
        event_id: str,
        provider: str,
        booking_uid: str,
        state: dict[str, Any],
    ) -> dict[str, Any]:
        """The values of a new run, queued and due at once."""
        now = utcnow()
        return {"id": run_id, "workspace_id": workspace_id, "workflow_id": workflow_id,
                "workflow_name": workflow_name, "workflow_version": workflow_version,
                "event_id": event_id, "provider": provider, "booking_uid": booking_uid[:200],
                "status": "queued", "dead": 0, "attempt": 1, "next_due_at": now,
                "state": _jsonable(state), "created_at": now, "updated_at": now}  # fmt: skip

    @staticmethod
    def insert_new(conn: Connection, rows: builtins.list[dict[str, Any]]) -> int:
        """Insert runs that do not exist yet (an id is derived: a second insert is a no-op)."""
        if not rows:
            return 0
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        result = conn.execute(dialect.insert(RunRow).on_conflict_do_nothing(), rows)
        return max(int(result.rowcount or 0), 0)

    @staticmethod
    def keep_version(conn: Connection, workflow_id: str, version: int, source: Any) -> None:
        """Record a workflow version's definition once, for the runs that follow it."""
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(
            dialect.insert(WorkflowVersionRow)
            .values(workflow_id=workflow_id, version=version, definition=_jsonable(source),
                    created_at=utcnow())
            .on_conflict_do_nothing()
        )  # fmt: skip

    def version(self, workflow_id: str, version: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(WorkflowVersionRow.definition).where(
                    WorkflowVersionRow.workflow_id == workflow_id,
                    WorkflowVersionRow.version == version,
                )
            ).scalar()
        return dict(found) if found is not None else None

    def claim(self, owner: str, limit: int, lease_s: float) -> builtins.list[str]:
        """Take up to ``limit`` due runs (and runs whose lease ran out) for ``owner``,
        the workspaces' in turn (:meth:`claim_fair`)."""
        return [run_id for run_id, _ in self.claim_fair(owner, limit, lease_s)]

    def claim_fair(
        self,
        owner: str,
        limit: int,
        lease_s: float,
        room: Callable[[str], int] | None = None,
    ) -> builtins.list[tuple[str, str]]:
        """Take up to ``limit`` due runs for ``owner``, as ``(run id, workspace id)``.

        The workspaces take turns: the first due run of each workspace, then the second
        of each, and so on (``ROW_NUMBER`` over each workspace's runs by due time), so a
        backlog of one workspace's runs does not hold back another's run due now.
        ``room(workspace_id)`` says how many more runs of a workspace the caller will
        take (its share of the runs in flight); a workspace without room is skipped.
        On PostgreSQL concurrent workers skip each other's rows (``SKIP LOCKED``)."""
        now = utcnow()
        due = or_(
            and_(RunRow.status.in_(("queued", "waiting")), RunRow.next_due_at <= now),
            and_(RunRow.status == "running", RunRow.lease_until < now),
        )
        with self.engine.connect() as conn:  # the usual answer, "nothing due", takes no lock
            if conn.execute(select(RunRow.id).where(due).limit(1)).first() is None:
                return []
        turn = func.row_number().over(
            partition_by=RunRow.workspace_id, order_by=(RunRow.next_due_at, RunRow.id)
        )
        ranked = select(RunRow.id, RunRow.workspace_id, RunRow.next_due_at,
                        turn.label("turn")).where(due).subquery()  # fmt: skip
        pg = self.engine.dialect.name == "postgresql"
        wide = limit * 2 if pg else limit  # another worker may hold some: look further
        pick = (
            select(ranked.c.id, ranked.c.workspace_id)
            .where(ranked.c.turn <= wide)
            .order_by(ranked.c.turn, ranked.c.next_due_at, ranked.c.id)
            .limit(wide)
        )
        with write_transaction(self.engine) as conn:
            candidates = conn.execute(pick).tuples().all()
            if pg and candidates:  # keep, in turn order, those no other worker holds
                lock = select(RunRow.id).where(
                    RunRow.id.in_([run_id for run_id, _ in candidates]), due
                )
                free = set(conn.execute(lock.with_for_update(skip_locked=True)).scalars())
                candidates = [c for c in candidates if c[0] in free]
            chosen = _within_room(candidates, limit, room)
            if not chosen:
                return []
            conn.execute(
                update(RunRow)
                .where(RunRow.id.in_([run_id for run_id, _ in chosen]))
                .values(status="running", lease_owner=owner,
                        lease_until=now + timedelta(seconds=lease_s), updated_at=now)
            )  # fmt: skip
        return chosen

    def held(self, owner: str, run_ids: builtins.list[str], lease_s: float) -> builtins.list[Any]:
        """Renew ``owner``'s lease on the runs of ``run_ids`` it still holds and return them
        (plain rows: attribute access like a ``RunRow``, without the ORM's cost).

        ``owner`` names one batch (``<worker>#<batch>``): a batch resumed after a crash
        gets only the runs no other batch took meanwhile, and once it has renewed their
        lease no other batch can take them, so two batches never work on one run."""
        with write_transaction(self.engine) as conn:
            mine = and_(RunRow.id.in_(run_ids), RunRow.status == "running",
                        RunRow.lease_owner == owner)  # fmt: skip
            until = utcnow() + timedelta(seconds=lease_s)
            conn.execute(update(RunRow).where(mine).values(lease_until=until))
            return list(conn.execute(select(*RunRow.__table__.columns).where(mine)))

    def extend(self, owner: str, run_ids: builtins.list[str], lease_s: float) -> None:
        """Renew ``owner``'s lease on runs it still works on (``updated_at`` untouched: it
        tells ``save_all`` whether a run was woken meanwhile)."""
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(RunRow)
                .where(RunRow.id.in_(run_ids), RunRow.lease_owner == owner,
                       RunRow.status == "running")
                .values(lease_until=utcnow() + timedelta(seconds=lease_s))
            )  # fmt: skip

    def save_all(self, owner: str, outcomes: builtins.list[tuple[RunRow, dict[str, Any]]]) -> None:
        """Store where each run now stands, in one transaction, if ``owner`` still holds it.

        A run woken while its batch ran (its booking moved or ended meanwhile: ``wake``
        touched it) is made due at once instead of at the time it computed."""
        if not outcomes:
            return
        now = utcnow()
        with write_transaction(self.engine) as conn:
            touched = {
                row.id: row.updated_at
                for row in conn.execute(
                    select(RunRow.id, RunRow.updated_at).where(
                        RunRow.id.in_([taken.id for taken, _ in outcomes])
                    )
                )
            }
            params = []
            for taken, values in outcomes:
                status = values["status"]
                final = status in FINAL
                due = None if final else values.get("next_due_at")
                if status == "waiting" and touched.get(taken.id) != taken.updated_at:
                    due = now
                params.append({
                    "b_id": taken.id, "b_owner": owner, "status": status,
                    "dead": int(values.get("dead", 0)), "error": _opt_json(values.get("error")),
                    "current_step": values.get("current_step"), "next_due_at": due,
                    "state": _opt_json(values.get("state")),
                    "booking_uid": str(values.get("booking_uid") or taken.booking_uid)[:200],
                    "cancel_reason": values.get("cancel_reason"),
                    "finished_at": now if final else None, "updated_at": now,
                    "lease_until": None,
                })  # fmt: skip
            conn.execute(_SAVE, params)

    def wake(self, run_ids: builtins.list[str], **values: Any) -> None:
        """Make waiting runs due now (their booking moved or ended: they look again)."""
        if not run_ids:
            return
        now = utcnow()
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(RunRow)
                .where(RunRow.id.in_(run_ids), RunRow.status.in_(("queued", "waiting")))
                .values(next_due_at=now, updated_at=now)
            )
            # a run in a batch right now is told through its updated_at (see save_all)
            conn.execute(
                update(RunRow).where(RunRow.id.in_(run_ids)).values(updated_at=now, **values)
            )

    def count_active(self, workflow_id: str) -> int:
        """How many of the workflow's runs are not finished (queued, waiting or running)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(*self._of_workflow(workflow_id))
                ).scalar_one()
            )

    def cancel_active(self, workflow_id: str, reason: str) -> int:
        """End the workflow's unfinished runs as ``cancelled`` with ``reason`` (a trace row
        on the step each was at); returns how many. A run in a batch right now finishes
        the step it is calling, and its batch then stores nothing over the cancel."""
        now = utcnow()
        with write_transaction(self.engine) as conn:
            found = conn.execute(
                select(RunRow.id, RunRow.current_step, RunRow.attempt).where(
                    *self._of_workflow(workflow_id)
                )
            ).all()
            if not found:
                return 0
            ids = set(
                conn.execute(
                    update(RunRow)
                    .where(RunRow.id.in_([r.id for r in found]), RunRow.status.in_(ACTIVE))
                    .values(status="cancelled", cancel_reason=reason[:300], next_due_at=None,
                            lease_until=None, finished_at=now, updated_at=now)
                    .returning(RunRow.id)
                ).scalars()
            )  # fmt: skip
            steps = [
                {"run_id": r.id, "step_id": r.current_step, "attempt": r.attempt or 1,
                 "status": "cancelled", "error": {"reason": reason}, "started_at": now,
                 "finished_at": now}
                for r in found
                if r.id in ids and r.current_step
            ]  # fmt: skip
            if steps:
                conn.execute(insert(RunStepRow), steps)
        return len(ids)

    def _of_workflow(self, workflow_id: str) -> tuple[Any, ...]:
        return (RunRow.workspace_id == self.workspace_id, RunRow.workflow_id == workflow_id,
                RunRow.status.in_(ACTIVE))  # fmt: skip

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


def _opt_json(value: Any) -> Any:
    return _jsonable(value) if value is not None else None


_SAVE = (
    update(RunRow)
    .where(RunRow.id == bindparam("b_id"), RunRow.lease_owner == bindparam("b_owner"),
           RunRow.status == "running")
    .values({c: bindparam(c) for c in ("status", "dead", "error", "current_step", "next_due_at",
                                       "state", "booking_uid", "cancel_reason", "finished_at",
                                       "updated_at", "lease_until")})
)  # fmt: skip


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
        "worker": row.lease_owner.split("#", 1)[0] if row.lease_owner else None,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
    }


def _within_room(
    candidates: Sequence[tuple[str, str]], limit: int, room: Callable[[str], int] | None
) -> builtins.list[tuple[str, str]]:
    """The first ``limit`` candidates, each workspace's no more than its ``room``."""
    left: dict[str, int] = {}
    chosen: builtins.list[tuple[str, str]] = []
    for run_id, workspace_id in candidates:
        if workspace_id not in left:
            left[workspace_id] = room(workspace_id) if room is not None else limit
        if left[workspace_id] > 0:
            left[workspace_id] -= 1
            chosen.append((run_id, workspace_id))
            if len(chosen) >= limit:
                break
    return chosen
