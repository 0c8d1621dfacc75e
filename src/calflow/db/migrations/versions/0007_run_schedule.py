"""Runs scheduled from the database: run state and lease, definition versions, rate windows.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add the run's state and lease, ``workflow_versions`` and ``rate_windows``."""
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("state", _JSON, nullable=True))
        batch.add_column(sa.Column("lease_owner", sa.String(200), nullable=True))
        batch.add_column(sa.Column("lease_until", _TS, nullable=True))
        batch.create_index("ix_runs_status_next_due_at", ["status", "next_due_at"])
    op.create_table(
        "workflow_versions",
        sa.Column("workflow_id", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", _JSON, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("workflow_id", "version", name="pk_workflow_versions"),
    )
    op.create_table(
        "rate_windows",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("window_start", _TS, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_rate_windows"),
    )


def downgrade() -> None:
    """Drop what ``upgrade`` added."""
    op.drop_table("rate_windows")
    op.drop_table("workflow_versions")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_status_next_due_at")
        batch.drop_column("lease_until")
        batch.drop_column("lease_owner")
        batch.drop_column("state")
