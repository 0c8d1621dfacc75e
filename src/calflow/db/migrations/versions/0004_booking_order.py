"""Ordering of booking changes: each event's verdict and each booking's applied state.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add ``events.ordering`` / ``events.stale_reason`` and create ``booking_states``."""
    with op.batch_alter_table("events") as batch:
        batch.add_column(
            sa.Column("ordering", sa.String(16), nullable=False, server_default="applied")
        )
        batch.add_column(sa.Column("stale_reason", sa.String(300), nullable=True))
    op.create_table(
        "booking_states",
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("booking_uid", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("phase", sa.Integer(), nullable=False),
        sa.Column("occurred_at", _TS, nullable=False),
        sa.Column("event_id", sa.String(40), nullable=True),
        sa.Column("start", _TS, nullable=True),
        sa.Column("end", _TS, nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "provider", "booking_uid", name="pk_booking_states"
        ),
    )


def downgrade() -> None:
    """Drop ``booking_states`` and the ordering columns."""
    op.drop_table("booking_states")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("stale_reason")
        batch.drop_column("ordering")
