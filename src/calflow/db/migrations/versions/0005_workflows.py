"""Workflows, their runs and each run's step trace.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``workflows``, ``runs`` and ``run_steps``."""
    op.create_table(
        "workflows",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("definition", _JSON, nullable=False),
        sa.Column("enabled", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workflows"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_workflows_workspace_id_name"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("workflow_id", sa.String(40), nullable=False),
        sa.Column("workflow_name", sa.String(80), nullable=False),
        sa.Column("workflow_version", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("booking_uid", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("dead", sa.Integer(), nullable=False),
        sa.Column("current_step", sa.String(40), nullable=True),
        sa.Column("next_due_at", _TS, nullable=True),
        sa.Column("error", _JSON, nullable=True),
        sa.Column("cancel_reason", sa.String(300), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_workspace_id_created_at", "runs", ["workspace_id", "created_at"])
    op.create_index("ix_runs_workspace_id_booking_uid", "runs", ["workspace_id", "booking_uid"])
    op.create_index("ix_runs_workspace_id_status", "runs", ["workspace_id", "status"])
    op.create_table(
        "run_steps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("step_id", sa.String(40), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("port", sa.String(40), nullable=True),
        sa.Column("input", _JSON, nullable=True),
        sa.Column("output", _JSON, nullable=True),
        sa.Column("error", _JSON, nullable=True),
        sa.Column("due_at", _TS, nullable=True),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_steps_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_run_steps"),
    )
    op.create_index("ix_run_steps_run_id", "run_steps", ["run_id"])


def downgrade() -> None:
    """Drop ``run_steps``, ``runs`` and ``workflows``."""
    op.drop_index("ix_run_steps_run_id", table_name="run_steps")
    op.drop_table("run_steps")
    op.drop_index("ix_runs_workspace_id_status", table_name="runs")
    op.drop_index("ix_runs_workspace_id_booking_uid", table_name="runs")
    op.drop_index("ix_runs_workspace_id_created_at", table_name="runs")
    op.drop_table("runs")
    op.drop_table("workflows")
