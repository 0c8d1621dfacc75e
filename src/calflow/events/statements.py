"""The inbox's hot-path SQL, written once and compiled once.

SQLAlchemy cannot cache its SQLite ``insert().on_conflict_*`` constructs, so the
webhook path paid ~0.5 ms per delivery recompiling them. These ``text()`` statements
are dialect-neutral (SQLite and PostgreSQL both speak ``ON CONFLICT … RETURNING`` and
``excluded.``), typed for the JSON and UTC timestamp columns, and cached; the
``FOR UPDATE`` variants are used on PostgreSQL only.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, TextClause, bindparam, text

from calflow.db.types import JSONDocument, UTCDateTime

_TS = ("start", "occurred_at", "received_at")

INSERT_EVENT: TextClause = text(
    """
    INSERT INTO events (id, workspace_id, dedupe_key, provider, kind, original_type,
        booking_uid, integration_id, source, "start", occurred_at, received_at, data, raw,
        deliveries, dispatched_at, ordering, stale_reason)
    VALUES (:id, :workspace_id, :dedupe_key, :provider, :kind, :original_type,
        :booking_uid, :integration_id, :source, :start, :occurred_at, :received_at, :data, :raw,
        1, NULL, 'applied', NULL)
    ON CONFLICT (workspace_id, dedupe_key) DO NOTHING
    RETURNING id
    """
).bindparams(
    *(bindparam(name, type_=UTCDateTime()) for name in _TS),
    bindparam("data", type_=JSONDocument),
    bindparam("raw", type_=JSONDocument),
)

_SELECT_EVENT = """
    SELECT id, data, deliveries FROM events
    WHERE workspace_id = :workspace_id AND dedupe_key = :dedupe_key
"""
SELECT_EVENT = {
    "sqlite": text(_SELECT_EVENT).columns(data=JSONDocument),
    "postgresql": text(_SELECT_EVENT + " FOR UPDATE").columns(data=JSONDocument),
}

COUNT_DUPLICATE: TextClause = text("UPDATE events SET deliveries = deliveries + 1 WHERE id = :id")
COUNT_DUPLICATE_AND_FILL: TextClause = text(
    "UPDATE events SET deliveries = deliveries + 1, data = :data WHERE id = :id"
).bindparams(bindparam("data", type_=JSONDocument))

MARK_STALE: TextClause = text(
    "UPDATE events SET ordering = 'stale', stale_reason = :reason WHERE id = :id"
)

INSERT_DELIVERY: TextClause = text(
    """
    INSERT INTO event_deliveries (event_id, source, integration_id, reference, duplicate,
        received_at)
    VALUES (:event_id, :source, :integration_id, :reference, :duplicate, :received_at)
    """
).bindparams(bindparam("received_at", type_=UTCDateTime()))

_SELECT_STATE = """
    SELECT kind, phase, occurred_at, event_id, "start", "end" FROM booking_states
    WHERE workspace_id = :workspace_id AND provider = :provider AND booking_uid = :booking_uid
"""
_STATE_TYPES = {"occurred_at": UTCDateTime(), "start": UTCDateTime(), "end": UTCDateTime()}
SELECT_STATE = {
    "sqlite": text(_SELECT_STATE).columns(**_STATE_TYPES),
    "postgresql": text(_SELECT_STATE + " FOR UPDATE").columns(**_STATE_TYPES),
}

SAVE_STATE: TextClause = text(
    """
    INSERT INTO booking_states (workspace_id, provider, booking_uid, kind, phase, occurred_at,
        event_id, "start", "end", updated_at)
    VALUES (:workspace_id, :provider, :booking_uid, :kind, :phase, :occurred_at, :event_id,
        :start, :end, :updated_at)
    ON CONFLICT (workspace_id, provider, booking_uid) DO UPDATE SET
        kind = excluded.kind, phase = excluded.phase, occurred_at = excluded.occurred_at,
        event_id = excluded.event_id, "start" = excluded."start", "end" = excluded."end",
        updated_at = excluded.updated_at
    """
).bindparams(
    *(
        bindparam(name, type_=UTCDateTime())
        for name in ("occurred_at", "start", "end", "updated_at")
    )
)

_ACTIVE_SEATS = """
    SELECT booking_uid FROM booking_states
    WHERE workspace_id = :workspace_id AND provider = :provider
        AND booking_uid LIKE :prefix ESCAPE '\\' AND phase < 2
"""

BOOKING_LOCK: TextClause = text("SELECT pg_advisory_xact_lock(hashtext(:name))")


class Writer:
    """The hot-path statements on one open write transaction.

    On SQLite they go straight to the driver's cursor (SQLAlchemy's per-statement
    execution machinery was a third of the receiver's CPU), with the values converted
    exactly as SQLAlchemy stores them; on PostgreSQL through the ``text()`` statements.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pg = conn.dialect.name == "postgresql"
        self._cursor = None if self.pg else conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]

    def _raw(self, statement: str, params: dict[str, Any]) -> Any:
        assert self._cursor is not None
        converted = {k: _sqlite_value(v) for k, v in params.items()}
        return self._cursor.execute(statement, converted)

    def insert_event(self, params: dict[str, Any]) -> str | None:
        if self.pg:
            found = self.conn.execute(INSERT_EVENT, params).scalar()
            return None if found is None else str(found)
        row = self._raw(INSERT_EVENT.text, params).fetchone()
        return None if row is None else str(row[0])

    def select_event(self, workspace_id: str, dedupe_key: str) -> tuple[str, dict[str, Any], int]:
        """The stored event's id, data and count of deliveries so far."""
        params = {"workspace_id": workspace_id, "dedupe_key": dedupe_key}
        if self.pg:
            row = self.conn.execute(SELECT_EVENT["postgresql"], params).one()
            return str(row.id), dict(row.data), int(row.deliveries)
        found = self._raw(_SELECT_EVENT, params).fetchone()
        return str(found[0]), json.loads(found[1]), int(found[2])

    def execute(self, statement: TextClause, params: dict[str, Any]) -> None:
        if self.pg:
            self.conn.execute(statement, params)
        else:
            self._raw(statement.text, params)

    def select_state(self, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """(kind, phase, occurred_at, event_id, start, end) or None."""
        if self.pg:
            row = self.conn.execute(SELECT_STATE["postgresql"], params).first()
            return None if row is None else tuple(row)
        found = self._raw(_SELECT_STATE, params).fetchone()
        if found is None:
            return None
        kind, phase, occurred, event_id, start, end = found
        return kind, phase, _sqlite_time(occurred), event_id, _sqlite_time(start), _sqlite_time(end)

    def active_seats(self, params: dict[str, Any]) -> list[str]:
        """State keys of a booking's seats that have not ended (``prefix``: ``uid#seat:%``)."""
        if self.pg:
            return [str(r[0]) for r in self.conn.execute(text(_ACTIVE_SEATS), params)]
        return [str(r[0]) for r in self._raw(_ACTIVE_SEATS, params).fetchall()]

    def lock_booking(self, name: str) -> None:
        if self.pg:  # SQLite already holds its one write lock
            self.conn.execute(BOOKING_LOCK, {"name": name})


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware value (UTC)")
        # SQLAlchemy's storage format for SQLite DATETIME (UTC, no offset), with the year
        # always four digits: strftime("%Y") wrote year 999 as "999", which no reader
        # could parse back, so one such event made every list of its workspace fail
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


def _sqlite_time(value: Any) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
