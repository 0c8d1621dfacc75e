"""What the engine has yet to do, read from the database: the runs due now, how late
the oldest of them is, and the dead letters. ``/metrics``' queue gauges and ``calflow
doctor`` both report it; one indexed query for each part, every workspace together.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from calflow.db.models import RunRow
from calflow.db.types import utcnow

__all__ = ["Backlog", "read_backlog"]


@dataclass(frozen=True)
class Backlog:
    """``due``: runs whose next step is due and not yet taken (queued, or waiting with
    ``next_due_at`` passed); ``oldest_late_s``: how late the oldest of them is (0 when
    none); ``dead``: failed runs no route took."""

    due: int
    oldest_late_s: float
    dead: int


def read_backlog(engine: Engine) -> Backlog:
    """The backlog now (database errors propagate)."""
    now = utcnow()
    due = (
        select(func.count(), func.min(RunRow.next_due_at))
        .where(RunRow.status.in_(("queued", "waiting")))
        .where(RunRow.next_due_at <= now)
    )
    dead = select(func.count()).where(RunRow.status == "failed", RunRow.dead == 1)
    with engine.connect() as conn:
        count, oldest = conn.execute(due).one()
        letters = conn.execute(dead).scalar_one()
    late = (now - oldest).total_seconds() if oldest is not None else 0.0
    return Backlog(int(count), max(0.0, late), int(letters))
