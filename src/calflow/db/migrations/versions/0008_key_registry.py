"""The key registry: each encryption key's state and each running process's keys.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``key_states`` and ``key_processes``."""
    op.create_table(
        "key_states",
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("changed_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("key_id", name="pk_key_states"),
    )
    op.create_table(
        "key_processes",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("keys_source", sa.Text(), nullable=False),
        sa.Column("key_ids", _JSON, nullable=False),
        sa.Column("encrypts_with", sa.String(40), nullable=False),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("beat_s", sa.Float(), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("seen_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_key_processes"),
    )
    op.create_index("ix_key_processes_expires_at", "key_processes", ["expires_at"])


def downgrade() -> None:
    """Drop what ``upgrade`` added."""
    op.drop_index("ix_key_processes_expires_at", table_name="key_processes")
    op.drop_table("key_processes")
    op.drop_table("key_states")
