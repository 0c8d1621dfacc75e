"""Replay jobs and the outcome of each replayed item.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Create ``replay_jobs`` and ``replay_items``."""
    op.create_table(
        "replay_jobs",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("integration_id", sa.String(40), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("options", _JSON, nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("checkpoint", sa.Text(), nullable=True),
        sa.Column("exhausted", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_replay_jobs"),
    )
    op.create_index(
        "ix_replay_jobs_workspace_id_created_at", "replay_jobs", ["workspace_id", "created_at"]
    )
    op.create_table(
        "replay_items",
        sa.Column("job_id", sa.String(40), nullable=False),
        sa.Column("item_id", sa.String(80), nullable=False),
        sa.Column("object_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["replay_jobs.id"],
            name="fk_replay_items_job_id_replay_jobs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "item_id", name="pk_replay_items"),
    )
    op.create_index("ix_replay_items_job_id_status", "replay_items", ["job_id", "status"])


def downgrade() -> None:
    """Drop ``replay_items`` and ``replay_jobs``."""
    op.drop_index("ix_replay_items_job_id_status", table_name="replay_items")
    op.drop_table("replay_items")
    op.drop_index("ix_replay_jobs_workspace_id_created_at", table_name="replay_jobs")
    op.drop_table("replay_jobs")
