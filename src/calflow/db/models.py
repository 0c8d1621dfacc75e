"""Declarative models: calflow's tables as typed SQLAlchemy classes.

Every schema change also needs an Alembic script in ``migrations/versions``;
``tests/test_db.py`` checks that the models and the migrations agree.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from calflow.db.types import JSONDocument, UTCDateTime, utcnow

__all__ = [
    "DEFAULT_WORKSPACE",
    "Base",
    "IntegrationRow",
    "ReplayItemRow",
    "ReplayJobRow",
    "new_integration_id",
    "new_replay_job_id",
]

DEFAULT_WORKSPACE = "default"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base class of every calflow table (constraint names follow one convention)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONDocument}


def new_integration_id() -> str:
    """A fresh integration id: ``int_`` followed by 16 hex digits."""
    return "int_" + secrets.token_hex(8)


class IntegrationRow(Base):
    """A configured connection to an app: non-secret config plus one encrypted token.

    ``secrets`` holds ONE Fernet token of the JSON object of all secret fields
    (see :class:`calflow.vault.Vault`); plaintext secrets are never stored.
    """

    __tablename__ = "integrations"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name"),
        Index("ix_integrations_workspace_id_app_key", "workspace_id", "app_key"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=new_integration_id)
    workspace_id: Mapped[str] = mapped_column(String(64), default=DEFAULT_WORKSPACE)
    app_key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secrets: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return (
            f"IntegrationRow(id={self.id!r}, workspace_id={self.workspace_id!r}, "
            f"app_key={self.app_key!r}, name={self.name!r})"
        )


def new_replay_job_id() -> str:
    """A fresh replay job id: ``rpl_`` followed by 16 hex digits."""
    return "rpl_" + secrets.token_hex(8)


class ReplayJobRow(Base):
    """A replay job: what it replays where, its checkpoint and its lease.

    ``checkpoint`` is the source token of the first page not yet fully done (``None``:
    the beginning); ``exhausted`` says the source was read to its end. ``owner`` and
    ``heartbeat_at`` are the lease of the process running it. ``secret`` is the Fernet
    token of the signing secret (never stored in clear).
    """

    __tablename__ = "replay_jobs"
    __table_args__ = (
        Index("ix_replay_jobs_workspace_id_created_at", "workspace_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=new_replay_job_id)
    workspace_id: Mapped[str] = mapped_column(String(64), default=DEFAULT_WORKSPACE)
    integration_id: Mapped[str] = mapped_column(String(40))
    provider: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secret: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[str] = mapped_column(String(20))
    checkpoint: Mapped[str | None] = mapped_column(Text, default=None)
    exhausted: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    owner: Mapped[str | None] = mapped_column(String(200), default=None)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class ReplayItemRow(Base):
    """How one replayed item ended, per job: sent, skipped or failed, with the reason."""

    __tablename__ = "replay_items"
    __table_args__ = (Index("ix_replay_items_job_id_status", "job_id", "status"),)

    job_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("replay_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    item_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    object_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(Text, default="")
    http_status: Mapped[int | None] = mapped_column(Integer, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
