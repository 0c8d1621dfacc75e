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
    "ApiTokenRow",
    "Base",
    "BookingStateRow",
    "EventDeliveryRow",
    "EventRow",
    "IntegrationRow",
    "KeyProcessRow",
    "KeyStateRow",
    "RateWindowRow",
    "ReplayItemRow",
    "ReplayJobRow",
    "RunRow",
    "RunStepRow",
    "WorkflowRow",
    "WorkflowVersionRow",
    "WorkspaceRow",
    "new_api_token_id",
    "new_event_id",
    "new_integration_id",
    "new_replay_job_id",
    "new_workflow_id",
    "new_workspace_id",
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
    token of the signing secret (never stored in clear). ``counts`` are a dry run's
    counts (a dry run records no items).
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
    counts: Mapped[dict[str, Any] | None] = mapped_column(default=None)


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


def new_event_id() -> str:
    """A fresh event id: ``evt_`` followed by 20 hex digits."""
    return "evt_" + secrets.token_hex(10)


class EventRow(Base):
    """A normalized booking event in the inbox, stored once under its dedupe key.

    ``dispatched_at`` is null until the workflow engine has taken the event: the event
    is handed to processing by the same transaction that stores it. ``deliveries``
    counts every arrival that mapped to it (duplicates are ``deliveries - 1``).
    """

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("workspace_id", "dedupe_key"),
        Index("ix_events_workspace_id_received_at", "workspace_id", "received_at"),
        Index("ix_events_workspace_id_booking_uid", "workspace_id", "booking_uid"),
        Index("ix_events_dispatched_at", "dispatched_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=new_event_id)
    workspace_id: Mapped[str] = mapped_column(String(64), default=DEFAULT_WORKSPACE)
    dedupe_key: Mapped[str] = mapped_column(String(120))
    provider: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(40))
    original_type: Mapped[str] = mapped_column(String(80), default="")
    booking_uid: Mapped[str] = mapped_column(String(200), default="")
    integration_id: Mapped[str | None] = mapped_column(String(40), default=None)
    source: Mapped[str] = mapped_column(String(16))
    start: Mapped[datetime | None] = mapped_column(default=None)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)
    deliveries: Mapped[int] = mapped_column(Integer, default=1)
    dispatched_at: Mapped[datetime | None] = mapped_column(default=None)
    ordering: Mapped[str] = mapped_column(String(16), default="applied")
    """``applied``, or ``stale`` when the booking had already moved past this change."""
    stale_reason: Mapped[str | None] = mapped_column(String(300), default=None)


class BookingStateRow(Base):
    """The last schedule change that applied to a booking (see ``calflow.events.ordering``)."""

    __tablename__ = "booking_states"

    workspace_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    booking_uid: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    phase: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column()
    event_id: Mapped[str | None] = mapped_column(String(40), default=None)
    start: Mapped[datetime | None] = mapped_column(default=None)
    end: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class EventDeliveryRow(Base):
    """One arrival of a booking change: which source, when, and whether it was a duplicate."""

    __tablename__ = "event_deliveries"
    __table_args__ = (
        Index("ix_event_deliveries_event_id", "event_id"),
        Index("ix_event_deliveries_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(40), ForeignKey("events.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    integration_id: Mapped[str | None] = mapped_column(String(40), default=None)
    reference: Mapped[str | None] = mapped_column(String(200), default=None)
    duplicate: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


def new_workflow_id() -> str:
    """A fresh workflow id: ``wf_`` followed by 16 hex digits."""
    return "wf_" + secrets.token_hex(8)


class WorkflowRow(Base):
    """A workflow definition (the document as applied) and whether it is enabled."""

    __tablename__ = "workflows"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=new_workflow_id)
    workspace_id: Mapped[str] = mapped_column(String(64), default=DEFAULT_WORKSPACE)
    name: Mapped[str] = mapped_column(String(80))
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[int] = mapped_column(Integer, default=1)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkflowVersionRow(Base):
    """Each version of a workflow's definition that a run used (a run follows the version
    it started with, or the one ``runs retry`` chose, even after later edits)."""

    __tablename__ = "workflow_versions"

    workflow_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RateWindowRow(Base):
    """A fixed window of calls counted against a rate limit shared by every worker."""

    __tablename__ = "rate_windows"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column()
    count: Mapped[int] = mapped_column(Integer, default=0)


class RunRow(Base):
    """One run of a workflow for one event: its status and what it waits for.

    ``status``: queued, waiting (a timed step is due later), running, succeeded,
    failed (``dead`` when no route took the failure: the dead-letter list), cancelled.
    """

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_workspace_id_created_at", "workspace_id", "created_at"),
        Index("ix_runs_workspace_id_booking_uid", "workspace_id", "booking_uid"),
        Index("ix_runs_workspace_id_status", "workspace_id", "status"),
        Index("ix_runs_status_next_due_at", "status", "next_due_at"),
        Index("ix_runs_event_id", "event_id"),
        Index("ix_runs_status_finished_at", "status", "finished_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(64), default=DEFAULT_WORKSPACE)
    workflow_id: Mapped[str] = mapped_column(String(40))
    workflow_name: Mapped[str] = mapped_column(String(80))
    workflow_version: Mapped[int] = mapped_column(Integer, default=1)
    event_id: Mapped[str] = mapped_column(String(40))
    provider: Mapped[str] = mapped_column(String(64))
    booking_uid: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    dead: Mapped[int] = mapped_column(Integer, default=0)
    current_step: Mapped[str | None] = mapped_column(String(40), default=None)
    next_due_at: Mapped[datetime | None] = mapped_column(default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    cancel_reason: Mapped[str | None] = mapped_column(String(300), default=None)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    """1, then 2, 3… for each ``runs retry``."""
    state: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    """Where the run stands between batches: step index, attempt, the booking as the run
    knows it, earlier steps' outputs (see ``calflow.workflows.executor``)."""
    lease_owner: Mapped[str | None] = mapped_column(String(200), default=None)
    """The worker that last took the run (kept after it finishes: who ran it)."""
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class RunStepRow(Base):
    """One attempt of one step of a run: rendered input (secrets masked), port, output."""

    __tablename__ = "run_steps"
    __table_args__ = (Index("ix_run_steps_run_id", "run_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), ForeignKey("runs.id", ondelete="CASCADE"))
    step_id: Mapped[str] = mapped_column(String(40))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16))
    port: Mapped[str | None] = mapped_column(String(40), default=None)
    input: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    output: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    due_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


def new_workspace_id() -> str:
    """A fresh workspace id: ``ws_`` followed by 16 hex digits."""
    return "ws_" + secrets.token_hex(8)


class WorkspaceRow(Base):
    """A tenant: every other row names one in ``workspace_id``; ``settings`` is free JSON."""

    __tablename__ = "workspaces"
    __table_args__ = (UniqueConstraint("name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_workspace_id)
    name: Mapped[str] = mapped_column(String(80))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


def new_api_token_id() -> str:
    """A fresh API token id: ``tok_`` followed by 16 hex digits."""
    return "tok_" + secrets.token_hex(8)


class ApiTokenRow(Base):
    """An API token of one workspace: only the SHA-256 of the token text is stored.

    ``prefix`` (the first characters of the token) lets people tell tokens apart in
    lists without the stored value being usable to sign in.
    """

    __tablename__ = "api_tokens"
    __table_args__ = (
        UniqueConstraint("token_hash"),
        Index("ix_api_tokens_workspace_id", "workspace_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=new_api_token_id)
    workspace_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class KeyStateRow(Base):
    """What ``calflow keys`` decided about one encryption key, named by its id (the key
    itself is never stored): ``staged`` (added; decrypts, waits for every process to
    know it), ``primary`` (encrypts), ``old`` (replaced by a rotation; decrypts) or
    ``retired`` (dropped once no secret used it)."""

    __tablename__ = "key_states"

    key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class KeyProcessRow(Base):
    """A running ``calflow serve`` or ``worker`` and the keys it holds (ids only),
    written by its heartbeat every ``beat_s`` seconds; it counts as running until
    ``expires_at`` (three beats after the last)."""

    __tablename__ = "key_processes"
    __table_args__ = (Index("ix_key_processes_expires_at", "expires_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    keys_source: Mapped[str] = mapped_column(Text)
    key_ids: Mapped[list[str]] = mapped_column(JSONDocument)
    encrypts_with: Mapped[str] = mapped_column(String(40))
    problem: Mapped[str | None] = mapped_column(Text, default=None)
    beat_s: Mapped[float] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
