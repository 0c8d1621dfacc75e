"""A dry run's counts on its replay job.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Add ``replay_jobs.counts`` (null but for dry runs)."""
    with op.batch_alter_table("replay_jobs") as batch:
        batch.add_column(sa.Column("counts", _JSON, nullable=True))


def downgrade() -> None:
    """Drop ``replay_jobs.counts``."""
    with op.batch_alter_table("replay_jobs") as batch:
        batch.drop_column("counts")
