"""The inbox's hot-path SQL, written once and compiled once.

SQLAlchemy cannot cache its SQLite ``insert().on_conflict_*`` constructs, so the
webhook path paid ~0.5 ms per delivery recompiling them. These ``text()`` statements
are dialect-neutral (SQLite and PostgreSQL both speak ``ON CONFLICT … RETURNING`` and
``excluded.``), typed for the JSON and UTC timestamp columns, and cached; the
``FOR UPDATE`` variants are used on PostgreSQL only.
"""

from __future__ import annotations

from sqlalchemy import TextClause, bindparam, text

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
    SELECT id, data FROM events WHERE workspace_id = :workspace_id AND dedupe_key = :dedupe_key
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

BOOKING_LOCK: TextClause = text("SELECT pg_advisory_xact_lock(hashtext(:name))")
