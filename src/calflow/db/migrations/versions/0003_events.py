"""The event inbox: normalized booking events under a dedupe key, and their deliveries.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``events`` and ``event_deliveries``."""
    op.create_table(
        "events",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("dedupe_key", sa.String(120), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("original_type", sa.String(80), nullable=False),
        sa.Column("booking_uid", sa.String(200), nullable=False),
        sa.Column("integration_id", sa.String(40), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("start", _TS, nullable=True),
        sa.Column("occurred_at", _TS, nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("data", _JSON, nullable=False),
        sa.Column("raw", _JSON, nullable=False),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.Column("dispatched_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.UniqueConstraint("workspace_id", "dedupe_key", name="uq_events_workspace_id_dedupe_key"),
    )
    op.create_index("ix_events_workspace_id_received_at", "events", ["workspace_id", "received_at"])
    op.create_index("ix_events_workspace_id_booking_uid", "events", ["workspace_id", "booking_uid"])
    op.create_index("ix_events_dispatched_at", "events", ["dispatched_at"])
    op.create_table(
        "event_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("integration_id", sa.String(40), nullable=True),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("duplicate", sa.Integer(), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name="fk_event_deliveries_event_id_events",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_event_deliveries"),
    )  # fmt: skip
    op.create_index("ix_event_deliveries_event_id", "event_deliveries", ["event_id"])


def downgrade() -> None:
    """Drop ``event_deliveries`` and ``events``."""
    op.drop_index("ix_event_deliveries_event_id", table_name="event_deliveries")
    op.drop_table("event_deliveries")
    op.drop_index("ix_events_dispatched_at", table_name="events")
    op.drop_index("ix_events_workspace_id_booking_uid", table_name="events")
    op.drop_index("ix_events_workspace_id_received_at", table_name="events")
    op.drop_table("events")
