"""Workspaces (tenants) and their API tokens.

Every row calflow stores names a workspace; the REST API, the console and the MCP
server act for the workspace of the bearer token they were given, and see nothing
of any other. A token is shown once, when it is created: only its SHA-256 hash and
a short display prefix are stored, so a copy of the database signs nobody in.
Workspace ``settings`` is a free JSON object other surfaces keep their options in
(the MCP server's ``settings["mcp"]["expose"]``, for example).
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from calflow.db.engine import open_engine, write_transaction
from calflow.db.models import (
    DEFAULT_WORKSPACE,
    ApiTokenRow,
    WorkspaceRow,
    new_api_token_id,
    new_workspace_id,
)
from calflow.db.types import utcnow
from calflow.errors import ConfigError, FieldError, NotFoundError, ValidationError
from calflow.settings import Settings, get_settings

__all__ = [
    "DEFAULT_WORKSPACE",
    "TOKEN_PREFIX",
    "Principal",
    "TokenInfo",
    "TokenStore",
    "Workspace",
    "WorkspaceStore",
]

TOKEN_PREFIX = "cfk_"  # noqa: S105 (a prefix, not a secret)
"""Every calflow API token starts with this (secret scanners can look for it)."""
_DISPLAY_CHARS = 12
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")
_MAX_TOKEN_CHARS = 200
TOUCH_EVERY_S = 60.0
"""``last_used_at`` is written at most this often per token (a write per request would
make every API read a database write)."""


@dataclass(frozen=True)
class Workspace:
    """A workspace as stored."""

    id: str
    name: str
    settings: dict[str, Any]
    created_at: datetime

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "settings": self.settings,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a workspace, through one of its tokens."""

    workspace_id: str
    token_id: str


@dataclass(frozen=True)
class TokenInfo:
    """An API token as listed: never its text, only the prefix people recognise it by."""

    id: str
    workspace_id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "revoked": self.revoked_at is not None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def _workspace(row: WorkspaceRow) -> Workspace:
    return Workspace(row.id, row.name, dict(row.settings or {}), row.created_at)


def _token(row: ApiTokenRow) -> TokenInfo:
    return TokenInfo(
        row.id,
        row.workspace_id,
        row.name,
        row.prefix,
        row.created_at,
        row.last_used_at,
        row.revoked_at,
    )


def _check_name(name: Any) -> str:
    cleaned = name.strip() if isinstance(name, str) else ""
    if not _NAME.fullmatch(cleaned):
        raise ValidationError(
            "invalid workspace name",
            [
                FieldError(
                    "name",
                    "1 to 80 letters, digits, '_', '.' or '-', starting with a letter or digit",
                    "pattern",
                )
            ],
        )
    return cleaned


def hash_token(plaintext: str) -> str:
    """The stored form of a token: its SHA-256, hex."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


class WorkspaceStore:
    """Create, find and configure workspaces."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def default(cls, settings: Settings | None = None) -> WorkspaceStore:
        """The store on the configured (migrated) database."""
        return cls(open_engine(settings or get_settings()))

    def create(self, name: str) -> Workspace:
        """A new workspace; ``ConfigError`` if the name is taken."""
        name = _check_name(name)
        now = utcnow()
        row = WorkspaceRow(
            id=new_workspace_id(), name=name, settings={}, created_at=now, updated_at=now
        )
        try:
            with write_transaction(self.engine) as conn, Session(bind=conn) as session:
                session.add(row)
                session.flush()
        except IntegrityError:
            raise ConfigError(f"a workspace named {name!r} already exists") from None
        return _workspace(row)

    def get(self, workspace_id: str) -> Workspace:
        """The workspace with this id (``NotFoundError`` if none)."""
        with Session(self.engine) as session:
            row = session.get(WorkspaceRow, workspace_id)
            if row is None:
                raise NotFoundError(f"no workspace {workspace_id!r}")
            return _workspace(row)

    def by_name(self, name: str) -> Workspace:
        """The workspace with this name (``NotFoundError`` if none)."""
        with Session(self.engine) as session:
            row = session.scalars(select(WorkspaceRow).where(WorkspaceRow.name == name)).first()
            if row is None:
                raise NotFoundError(f"no workspace named {name!r}")
            return _workspace(row)

    def find(self, name_or_id: str) -> Workspace:
        """The workspace with this name, else this id; a ``NotFoundError`` that says how
        to see the workspaces there are."""
        with Session(self.engine) as session:
            row = session.scalars(
                select(WorkspaceRow)
                .where(or_(WorkspaceRow.name == name_or_id, WorkspaceRow.id == name_or_id))
                .order_by((WorkspaceRow.name == name_or_id).desc())
                .limit(1)
            ).first()
            if row is None:
                raise NotFoundError(
                    f"no workspace named {name_or_id!r} (list them: calflow workspaces list; "
                    f"make it: calflow workspaces create {name_or_id})"
                )
            return _workspace(row)

    def list(self) -> builtins.list[Workspace]:
        """Every workspace, by name."""
        with Session(self.engine) as session:
            rows = session.scalars(select(WorkspaceRow).order_by(WorkspaceRow.name)).all()
            return [_workspace(r) for r in rows]

    def ensure(self, name: str) -> Workspace:
        """The workspace named ``name``, created if missing (safe under concurrency)."""
        try:
            return self.by_name(name)
        except NotFoundError:
            pass
        try:
            return self.create(name)
        except ConfigError:  # created concurrently
            return self.by_name(name)

    def update_settings(self, workspace_id: str, patch: Mapping[str, Any]) -> Workspace:
        """Merge ``patch`` into the settings (top-level keys; a key set to null is removed)."""
        if not isinstance(patch, Mapping):
            raise ValidationError(
                "invalid settings", [FieldError("settings", "must be an object", "type")]
            )
        try:
            json.dumps(dict(patch))
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                "invalid settings",
                [FieldError("settings", f"must be JSON ({exc})", "type")],
            ) from None
        with write_transaction(self.engine) as conn, Session(bind=conn) as session:
            row = session.scalars(
                select(WorkspaceRow).where(WorkspaceRow.id == workspace_id).with_for_update()
            ).first()
            if row is None:
                raise NotFoundError(f"no workspace {workspace_id!r}")
            merged = dict(row.settings or {})
            for key, value in patch.items():
                if value is None:
                    merged.pop(str(key), None)
                else:
                    merged[str(key)] = value
            row.settings = merged
            row.updated_at = utcnow()
            session.flush()
            return _workspace(row)


class TokenStore:
    """API tokens: created (text shown once), verified, listed, revoked."""

    def __init__(self, engine: Engine, touch_every_s: float = TOUCH_EVERY_S) -> None:
        self.engine = engine
        self._touch_every_s = touch_every_s
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def create(self, workspace_id: str, name: str = "") -> tuple[TokenInfo, str]:
        """A new token of ``workspace_id``: (its info, its text). The text is not kept."""
        if not isinstance(name, str) or len(name) > 200:
            raise ValidationError(
                "invalid token", [FieldError("name", "at most 200 characters", "maxLength")]
            )
        plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = ApiTokenRow(
            id=new_api_token_id(),
            workspace_id=workspace_id,
            name=name.strip(),
            token_hash=hash_token(plaintext),
            prefix=plaintext[:_DISPLAY_CHARS],
            created_at=utcnow(),
        )
        with write_transaction(self.engine) as conn, Session(bind=conn) as session:
            if session.get(WorkspaceRow, workspace_id) is None:
                raise NotFoundError(f"no workspace {workspace_id!r}")
            session.add(row)
            session.flush()
        return _token(row), plaintext

    def verify(self, plaintext: str) -> Principal | None:
        """The principal of a valid, unrevoked token; None for anything else."""
        if (
            not isinstance(plaintext, str)
            or not plaintext.startswith(TOKEN_PREFIX)
            or len(plaintext) > _MAX_TOKEN_CHARS
        ):
            return None
        digest = hash_token(plaintext)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    ApiTokenRow.id,
                    ApiTokenRow.workspace_id,
                    ApiTokenRow.token_hash,
                    ApiTokenRow.revoked_at,
                ).where(ApiTokenRow.token_hash == digest)
            ).first()
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(str(row.token_hash), digest):
            return None
        self._touch(str(row.id))
        return Principal(str(row.workspace_id), str(row.id))

    def _touch(self, token_id: str) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._touched.get(token_id)
            if last is not None and now - last < self._touch_every_s:
                return
            self._touched[token_id] = now
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(ApiTokenRow).where(ApiTokenRow.id == token_id).values(last_used_at=utcnow())
            )

    def list(self, workspace_id: str) -> builtins.list[TokenInfo]:
        """The workspace's tokens (revoked ones too), newest first."""
        query = (
            select(ApiTokenRow)
            .where(ApiTokenRow.workspace_id == workspace_id)
            .order_by(ApiTokenRow.created_at.desc(), ApiTokenRow.id)
        )
        with Session(self.engine) as session:
            return [_token(r) for r in session.scalars(query).all()]

    def get(self, workspace_id: str, token_id: str) -> TokenInfo:
        """One token of the workspace (``NotFoundError`` if it has none with this id)."""
        with Session(self.engine) as session:
            row = session.scalars(
                select(ApiTokenRow).where(
                    ApiTokenRow.workspace_id == workspace_id, ApiTokenRow.id == token_id
                )
            ).first()
            if row is None:
                raise NotFoundError(f"no token {token_id!r}")
            return _token(row)

    def find(self, token_id: str) -> TokenInfo:
        """The token with this id, in whichever workspace it is (``NotFoundError`` if none)."""
        with Session(self.engine) as session:
            row = session.get(ApiTokenRow, token_id)
            if row is None:
                raise NotFoundError(f"no token {token_id!r}")
            return _token(row)

    def revoke(self, workspace_id: str, token_id: str) -> TokenInfo:
        """Revoke a token of the workspace: it stops working at once (idempotent)."""
        found = self.get(workspace_id, token_id)
        if found.revoked_at is None:
            with write_transaction(self.engine) as conn:
                conn.execute(
                    update(ApiTokenRow)
                    .where(ApiTokenRow.id == token_id, ApiTokenRow.revoked_at.is_(None))
                    .values(revoked_at=utcnow())
                )
        return self.get(workspace_id, token_id)
