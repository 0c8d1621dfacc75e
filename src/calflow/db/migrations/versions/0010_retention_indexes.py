"""Indexes the retention pruner reads by.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = (
    ("ix_runs_event_id", "runs", ["event_id"]),
    ("ix_runs_status_finished_at", "runs", ["status", "finished_at"]),
    ("ix_event_deliveries_received_at", "event_deliveries", ["received_at"]),
)


def upgrade() -> None:
    """Index runs by event and by end, deliveries by when they arrived."""
    for name, table, columns in _INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    """Drop the retention indexes."""
    for name, table, _ in _INDEXES:
        op.drop_index(name, table_name=table)
