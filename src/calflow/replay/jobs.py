"""Replay jobs in the database: creation, the lease, checkpoints and item outcomes.

A job is run by one process at a time. ``claim`` takes the lease (``owner`` +
``heartbeat_at``); every flush renews it. A job whose owner died (same host, process
gone) or whose heartbeat is older than ``STALE_AFTER_S`` can be claimed again, so a
crashed or killed replay is resumable at once.
"""

from __future__ import annotations

import builtins
import os
import socket
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from calflow.db.engine import write_transaction
from calflow.db.models import DEFAULT_WORKSPACE, ReplayItemRow, ReplayJobRow, new_replay_job_id
from calflow.db.types import utcnow
from calflow.errors import ConfigError, NotFoundError
from calflow.replay.model import FAILED, Outcome
from calflow.vault import Vault

STALE_AFTER_S = 30.0
ACTIVE = "running"
RESUMABLE = frozenset({"running", "failed", "interrupted", "cancelled", "completed"})


@dataclass(frozen=True)
class Job:
    """A replay job as stored."""

    id: str
    workspace_id: str
    integration_id: str
    provider: str
    target: str
    options: dict[str, Any]
    status: str
    checkpoint: str | None
    exhausted: bool
    error: str | None
    owner: str | None
    runs: int
    duration_s: float
    heartbeat_at: datetime | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    has_secret: bool
    counts: dict[str, Any] | None = None
    """A dry run's counts (``fetched``, ``skipped`` with ``skipped_reasons``…): a dry run
    records no items, so its totals stay zero."""

    @property
    def dry_run(self) -> bool:
        return bool(self.options.get("dry_run"))

    def public(self, totals: dict[str, int] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "job": self.id,
            "status": self.status,
            "provider": self.provider,
            "integration_id": self.integration_id,
            "target": self.target,
            "options": self.options,
            "checkpoint": self.checkpoint,
            "exhausted": self.exhausted,
            "error": self.error,
            "runs": self.runs,
            "duration_s": round(self.duration_s, 4),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }
        if totals is not None:
            out["totals"] = totals
        if self.counts is not None:
            out["counts"] = self.counts
        return out


def this_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_alive(owner: str | None) -> bool:
    if not owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine: only the heartbeat can tell
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _job(row: ReplayJobRow) -> Job:
    return Job(
        id=row.id,
        workspace_id=row.workspace_id,
        integration_id=row.integration_id,
        provider=row.provider,
        target=row.target,
        options=dict(row.options),
        status=row.status,
        checkpoint=row.checkpoint,
        exhausted=bool(row.exhausted),
        error=row.error,
        owner=row.owner,
        runs=row.runs,
        duration_s=row.duration_s,
        heartbeat_at=row.heartbeat_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        has_secret=row.secret is not None,
        counts=dict(row.counts) if row.counts is not None else None,
    )


class JobStore:
    """Replay jobs of one workspace."""

    def __init__(self, engine: Engine, vault: Vault, workspace_id: str = DEFAULT_WORKSPACE) -> None:
        self.engine = engine
        self._vault = vault
        self.workspace_id = workspace_id

    def create(
        self,
        *,
        integration_id: str,
        provider: str,
        target: str,
        options: dict[str, Any],
        secret: str | None,
    ) -> Job:
        now = utcnow()
        row = ReplayJobRow(
            id=new_replay_job_id(),
            workspace_id=self.workspace_id,
            integration_id=integration_id,
            provider=provider,
            target=target,
            options=options,
            secret=self._vault.encrypt_json({"secret": secret}) if secret else None,
            status=ACTIVE,
            checkpoint=None,
            exhausted=0,
            owner=this_owner(),
            runs=1,
            duration_s=0.0,
            heartbeat_at=now,
            created_at=now,
            updated_at=now,
        )
        with write_transaction(self.engine) as conn, Session(bind=conn) as session:
            session.add(row)
            session.flush()
        return _job(row)

    def _row(self, session: Session, job_id: str, lock: bool = False) -> ReplayJobRow:
        query = select(ReplayJobRow).where(
            ReplayJobRow.id == job_id, ReplayJobRow.workspace_id == self.workspace_id
        )
        row = session.scalars(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFoundError(f"no replay job {job_id!r}")
        return row

    def get(self, job_id: str) -> Job:
        with Session(self.engine) as session:
            return _job(self._row(session, job_id))

    def secret(self, job_id: str) -> str | None:
        with Session(self.engine) as session:
            token = self._row(session, job_id).secret
        return self._vault.decrypt_json(token).get("secret") if token else None

    def list(self, limit: int = 50) -> builtins.list[Job]:
        query = (
            select(ReplayJobRow)
            .where(ReplayJobRow.workspace_id == self.workspace_id)
            .order_by(ReplayJobRow.created_at.desc())
            .limit(limit)
        )
        with Session(self.engine) as session:
            return [_job(r) for r in session.scalars(query).all()]

    def claim(self, job_id: str, *, now: datetime | None = None) -> Job:
        """Take the lease of a job to resume it; ``ConfigError`` if another process runs it."""
        now = now or utcnow()
        with write_transaction(self.engine) as conn, Session(bind=conn) as session:
            row = self._row(session, job_id, lock=True)
            if row.options.get("dry_run"):
                raise ConfigError(f"replay job {job_id} was a dry run: start a new replay")
            if row.status == ACTIVE and row.owner != this_owner():
                fresh = row.heartbeat_at is not None and now - row.heartbeat_at < timedelta(
                    seconds=STALE_AFTER_S
                )
                if fresh and _owner_alive(row.owner):
                    raise ConfigError(
                        f"replay job {job_id} is running in process {row.owner}; "
                        "stop it first or wait for it to finish"
                    )
            row.status = ACTIVE
            row.owner = this_owner()
            row.heartbeat_at = now
            row.updated_at = now
            row.error = None
            row.finished_at = None
            row.runs += 1
            session.flush()
            return _job(row)

    def record(
        self,
        job_id: str,
        outcomes: Sequence[Outcome],
        *,
        checkpoint: str | None,
        exhausted: bool,
    ) -> str:
        """Store outcomes and the checkpoint in one transaction; return the job's status.

        A status other than ``running`` means someone asked the job to stop (cancel).
        """
        now = utcnow()
        rows = [
            {
                "job_id": job_id,
                "item_id": o.item_id,
                "object_id": o.object_id[:200],
                "kind": o.kind,
                "status": o.status,
                "reason": o.reason,
                "http_status": o.http_status,
                "attempts": o.attempts,
                "updated_at": now,
            }
            for o in outcomes
            if o.record
        ]
        with write_transaction(self.engine) as conn:
            if rows:
                insert = (
                    postgresql.insert(ReplayItemRow)
                    if conn.dialect.name == "postgresql"
                    else sqlite.insert(ReplayItemRow)
                )
                stmt = insert.on_conflict_do_update(
                    index_elements=["job_id", "item_id"],
                    set_={
                        "status": insert.excluded.status,
                        "reason": insert.excluded.reason,
                        "http_status": insert.excluded.http_status,
                        "attempts": insert.excluded.attempts,
                        "updated_at": insert.excluded.updated_at,
                    },
                )
                conn.execute(stmt, rows)
            conn.execute(
                update(ReplayJobRow)
                .where(ReplayJobRow.id == job_id)
                .values(
                    checkpoint=checkpoint,
                    exhausted=int(exhausted),
                    heartbeat_at=now,
                    updated_at=now,
                )
            )
            status = conn.execute(
                select(ReplayJobRow.status).where(ReplayJobRow.id == job_id)
            ).scalar_one()
        return str(status)

    def finish(
        self,
        job_id: str,
        status: str,
        *,
        error: str | None,
        duration_s: float,
        counts: dict[str, Any] | None = None,
    ) -> None:
        """Mark the job ended (``cancelled`` stays cancelled); ``counts``: a dry run's."""
        now = utcnow()
        extra = {"counts": counts} if counts is not None else {}
        with write_transaction(self.engine) as conn:
            current = conn.execute(
                select(ReplayJobRow.status).where(ReplayJobRow.id == job_id).with_for_update()
            ).scalar_one()
            final = "cancelled" if current == "cancelled" else status
            conn.execute(
                update(ReplayJobRow)
                .where(ReplayJobRow.id == job_id)
                .values(
                    status=final,
                    error=error,
                    owner=None,
                    updated_at=now,
                    finished_at=now,
                    duration_s=ReplayJobRow.duration_s + duration_s,
                    **extra,
                )
            )

    def cancel(self, job_id: str) -> Job:
        """Ask a running job to stop (it stops at its next flush); a stopped one is marked."""
        with write_transaction(self.engine) as conn, Session(bind=conn) as session:
            row = self._row(session, job_id, lock=True)
            if row.status in (ACTIVE, "failed", "interrupted"):
                row.status = "cancelled"
                row.updated_at = utcnow()
            session.flush()
            return _job(row)

    def recorded(self, job_id: str, item_ids: Iterable[str]) -> set[str]:
        """Which of ``item_ids`` already have an outcome in this job."""
        ids = list(item_ids)
        if not ids:
            return set()
        query = select(ReplayItemRow.item_id).where(
            ReplayItemRow.job_id == job_id, ReplayItemRow.item_id.in_(ids)
        )
        with self.engine.connect() as conn:
            return set(conn.execute(query).scalars().all())

    def failed_items(self, job_id: str, batch: int = 500) -> Iterator[tuple[str, str, str]]:
        """``(item_id, object_id, kind)`` of every failed item, in batches (flat memory)."""
        last = ""
        while True:
            query = (
                select(ReplayItemRow.item_id, ReplayItemRow.object_id, ReplayItemRow.kind)
                .where(
                    ReplayItemRow.job_id == job_id,
                    ReplayItemRow.status == FAILED,
                    ReplayItemRow.item_id > last,
                )
                .order_by(ReplayItemRow.item_id)
                .limit(batch)
            )
            with self.engine.connect() as conn:
                rows = [(str(a), str(b), str(c)) for a, b, c in conn.execute(query).all()]
            if not rows:
                return
            yield from rows
            last = rows[-1][0]

    def totals(self, job_id: str) -> dict[str, int]:
        query = (
            select(ReplayItemRow.status, func.count())
            .where(ReplayItemRow.job_id == job_id)
            .group_by(ReplayItemRow.status)
        )
        with self.engine.connect() as conn:
            counts = Counter({str(s): int(n) for s, n in conn.execute(query).all()})
        out = {"sent": counts["sent"], "skipped": counts["skipped"], "failed": counts["failed"]}
        return {"items": sum(out.values()), **out}

    def items(
        self, job_id: str, status: str | None = None, limit: int = 100
    ) -> builtins.list[dict[str, Any]]:
        query = select(ReplayItemRow).where(ReplayItemRow.job_id == job_id)
        if status:
            query = query.where(ReplayItemRow.status == status)
        query = query.order_by(ReplayItemRow.updated_at, ReplayItemRow.item_id).limit(limit)
        with Session(self.engine) as session:
            return [
                {
                    "item": r.item_id,
                    "object": r.object_id,
                    "kind": r.kind,
                    "status": r.status,
                    "reason": r.reason,
                    "http_status": r.http_status,
                    "attempts": r.attempts,
                }
                for r in session.scalars(query).all()
            ]
