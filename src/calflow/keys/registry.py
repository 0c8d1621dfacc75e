"""What the database records about keys: each key's state, each running process's keys.

``key_states`` holds the decisions of ``calflow keys`` by key id (the keys themselves are
never stored): ``staged``, ``primary``, ``old``, ``retired``. Every process follows the
recorded primary: it encrypts with it when it holds it (:meth:`KeyRing.prefer`).

``key_processes`` holds one row per running ``calflow serve`` or ``worker``: the ids of
the keys it holds, the one it encrypts with, and a problem with its key file if it has
one. Its heartbeat rewrites the row every ``beat_s`` seconds; the row counts as a
running process until ``expires_at`` (three beats later), so a process that was killed
stops counting after that, and one that stops cleanly removes its row at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.orm import Session

from calflow.db.engine import write_transaction
from calflow.db.models import KeyProcessRow, KeyStateRow
from calflow.db.types import utcnow
from calflow.keys.ring import KeyRing

__all__ = [
    "OLD",
    "PRIMARY",
    "RETIRED",
    "STAGED",
    "ProcessKeys",
    "beat",
    "expiry",
    "follow",
    "forget",
    "live",
    "recorded_primary",
    "set_states",
    "states",
]

STAGED = "staged"
PRIMARY = "primary"
OLD = "old"
RETIRED = "retired"
EXPIRY_BEATS = 3
"""A process counts as running for this many heartbeat intervals after its last beat."""
_PRUNE_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class ProcessKeys:
    """One running process as its heartbeat reported it."""

    id: str
    name: str
    role: str
    host: str
    pid: int
    keys_source: str
    key_ids: tuple[str, ...]
    encrypts_with: str
    problem: str | None
    beat_s: float
    started_at: datetime
    seen_at: datetime
    expires_at: datetime

    @property
    def label(self) -> str:
        """How messages name it: ``worker w1 (host db-2, pid 4242)``."""
        return f"{self.role} {self.name} (host {self.host}, pid {self.pid})"

    @property
    def from_env(self) -> bool:
        """Its keys come from ``CALFLOW_SECRET_KEYS`` (changed only by a restart)."""
        return self.keys_source == "env"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "host": self.host,
            "pid": self.pid,
            "keys_source": self.keys_source,
            "keys": list(self.key_ids),
            "encrypts_with": self.encrypts_with,
            "problem": self.problem,
            "seen_at": self.seen_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }


def states(engine: Engine) -> dict[str, str]:
    """Every recorded key id and its state."""
    with engine.connect() as conn:
        rows = conn.execute(select(KeyStateRow.key_id, KeyStateRow.state)).all()
    return {key: state for key, state in rows}


def recorded_primary(engine: Engine) -> str | None:
    """The id of the key recorded as the encrypting one, if any."""
    found = [key for key, state in states(engine).items() if state == PRIMARY]
    return found[0] if found else None


def set_states(engine: Engine, changes: Mapping[str, str]) -> None:
    """Record the states in ``changes`` (key id → state) in one transaction; a key made
    primary turns the previous primary into ``old``."""
    now = utcnow()
    with write_transaction(engine) as conn:
        if PRIMARY in changes.values():
            conn.execute(
                update(KeyStateRow)
                .where(KeyStateRow.state == PRIMARY)
                .values(state=OLD, changed_at=now)
            )
        for key, state in changes.items():
            done = conn.execute(
                update(KeyStateRow)
                .where(KeyStateRow.key_id == key)
                .values(state=state, changed_at=now)
            )
            if done.rowcount == 0:
                conn.execute(insert(KeyStateRow).values(key_id=key, state=state, changed_at=now))


def follow(engine: Engine, ring: KeyRing) -> str | None:
    """Make ``ring`` encrypt with the recorded primary (when it holds it); return its id."""
    primary = recorded_primary(engine)
    ring.prefer(primary)
    return primary


def beat(engine: Engine, report: ProcessKeys) -> None:
    """Write (or rewrite) a process's row, and drop rows of processes gone for a day."""
    values = {
        "name": report.name,
        "role": report.role,
        "host": report.host,
        "pid": report.pid,
        "keys_source": report.keys_source,
        "key_ids": list(report.key_ids),
        "encrypts_with": report.encrypts_with,
        "problem": report.problem,
        "beat_s": report.beat_s,
        "seen_at": report.seen_at,
        "expires_at": report.expires_at,
    }
    with write_transaction(engine) as conn:
        done = conn.execute(
            update(KeyProcessRow).where(KeyProcessRow.id == report.id).values(**values)
        )
        if done.rowcount == 0:
            conn.execute(
                insert(KeyProcessRow).values(id=report.id, started_at=report.started_at, **values)
            )
        conn.execute(
            delete(KeyProcessRow).where(KeyProcessRow.expires_at < report.seen_at - _PRUNE_AFTER)
        )


def forget(engine: Engine, process_id: str) -> None:
    """Remove a process's row (it is stopping)."""
    with write_transaction(engine) as conn:
        conn.execute(delete(KeyProcessRow).where(KeyProcessRow.id == process_id))


def live(engine: Engine, now: datetime | None = None) -> list[ProcessKeys]:
    """The processes that count as running at ``now`` (default: this moment), by name."""
    moment = now or utcnow()
    with Session(engine) as session:
        rows = session.scalars(
            select(KeyProcessRow)
            .where(KeyProcessRow.expires_at > moment)
            .order_by(KeyProcessRow.name, KeyProcessRow.started_at)
        ).all()
        return [_report(row) for row in rows]


def expiry(seen_at: datetime, beat_s: float) -> datetime:
    """When a process last seen at ``seen_at`` stops counting as running."""
    return seen_at + timedelta(seconds=EXPIRY_BEATS * beat_s)


def _report(row: KeyProcessRow) -> ProcessKeys:
    return ProcessKeys(
        id=row.id,
        name=row.name,
        role=row.role,
        host=row.host,
        pid=row.pid,
        keys_source=row.keys_source,
        key_ids=tuple(str(k) for k in row.key_ids),
        encrypts_with=row.encrypts_with,
        problem=row.problem,
        beat_s=row.beat_s,
        started_at=row.started_at,
        seen_at=row.seen_at,
        expires_at=row.expires_at,
    )
