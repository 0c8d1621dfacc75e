"""Rate limits shared by every worker: a fixed window of calls per key, in the database.

A provider's limit (Cal.com: 120 calls per 60 s per key) holds for all of calflow's
workers together, so the count lives in the shared database, not in one process.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from calflow.db.engine import write_transaction
from calflow.db.models import RateWindowRow
from calflow.db.types import utcnow


def take_slot(engine: Engine, key: str, limit: int, period_s: float) -> float:
    """Count one call against ``key`` and return 0, or return the seconds until the
    window resets when ``limit`` calls were already made in it (nothing counted)."""
    now = utcnow()
    with write_transaction(engine) as conn:
        query = select(RateWindowRow.window_start, RateWindowRow.count).where(
            RateWindowRow.key == key
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            inserted = conn.execute(
                dialect.insert(RateWindowRow)
                .values(key=key, window_start=now, count=1)
                .on_conflict_do_nothing()
            )
            if inserted.rowcount:
                return 0.0
            row = conn.execute(query).one()  # another worker created it just now
        start: datetime = row[0]
        count = int(row[1])
        ends = start + timedelta(seconds=period_s)
        if now >= ends:
            conn.execute(
                update(RateWindowRow)
                .where(RateWindowRow.key == key)
                .values(window_start=now, count=1)
            )
            return 0.0
        if count >= limit:
            return max((ends - now).total_seconds(), 0.05)
        conn.execute(
            update(RateWindowRow)
            .where(RateWindowRow.key == key)
            .values(count=RateWindowRow.count + 1)
        )
        return 0.0
