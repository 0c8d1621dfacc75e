"""Integrations: named, per-workspace connections to an app, with encrypted credentials.

An integration keeps its non-secret fields (``config``) as plain JSON and all
its secret fields as one Fernet token (see :mod:`calflow.vault`). Loaded
integrations carry secrets as ``pydantic.SecretStr``, so printing, logging or
serializing one never reveals them; :meth:`Integration.value` reveals a single
field to the code that needs it.

Secrets stay where they were given: the encrypted token also records where the
integration's calls went when they were saved (its ``base_url`` and ``host``,
:func:`calflow.netpolicy.binding`). An update that changes either clears every stored
secret not sent again in the same update, and the runner refuses to send secrets to a
target they were not saved for.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Engine, Select, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from calflow.db.engine import open_engine, write_transaction
from calflow.db.models import DEFAULT_WORKSPACE, IntegrationRow, new_integration_id
from calflow.db.types import utcnow
from calflow.errors import ConfigError, FieldError, NotFoundError, ValidationError
from calflow.keys.registry import follow
from calflow.netpolicy import binding
from calflow.settings import Settings, get_settings
from calflow.vault import Vault

__all__ = ["MASK", "Integration", "IntegrationStore"]

MASK = "********"
"""What a secret value looks like in every public view."""

_BOUND = "_bound_to"
"""The key, inside the encrypted secrets, of where the secrets were saved for."""


@dataclass(frozen=True)
class Integration:
    """One configured integration, as loaded from the store (immutable)."""

    id: str
    workspace_id: str
    app_key: str
    name: str
    config: Mapping[str, Any] = field(hash=False)
    """Non-secret fields."""
    secrets: Mapping[str, SecretStr] = field(hash=False)
    """Secret fields; ``SecretStr`` masks them in every repr."""
    created_at: datetime
    updated_at: datetime
    secrets_for: str | None = None
    """Where the secrets were saved for (:func:`calflow.netpolicy.binding`); None for an
    integration saved before calflow recorded it."""
    cleared: tuple[str, ...] = ()
    """Secrets the update that returned this integration removed because its ``base_url``
    or ``host`` changed (empty otherwise)."""

    def value(self, key: str) -> Any:
        """The config value or the revealed secret named ``key``; None if there is neither."""
        if key in self.config:
            return self.config[key]
        secret = self.secrets.get(key)
        return secret.get_secret_value() if secret is not None else None

    def values(self) -> dict[str, Any]:
        """Every field, secrets revealed: only for checking settings before a change."""
        return {**self.config, **{k: v.get_secret_value() for k, v in self.secrets.items()}}

    def public_view(self) -> dict[str, Any]:
        """A JSON-ready dict without secret values (only their names): safe for ``--json``."""
        return {
            "id": self.id,
            "workspace_id": self.workspace_id,
            "app": self.app_key,
            "name": self.name,
            "config": dict(self.config),
            "secrets": {key: MASK for key in sorted(self.secrets)},
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }

    def __repr__(self) -> str:
        return (
            f"Integration(id={self.id!r}, workspace_id={self.workspace_id!r}, "
            f"app_key={self.app_key!r}, name={self.name!r}, config={dict(self.config)!r}, "
            f"secrets={ {key: MASK for key in sorted(self.secrets)}!r})"
        )

    __str__ = __repr__


class IntegrationStore:
    """Create, read, update and delete the integrations of one workspace."""

    def __init__(self, engine: Engine, vault: Vault, workspace_id: str = DEFAULT_WORKSPACE) -> None:
        self._engine = engine
        self._vault = vault
        self.workspace_id = workspace_id

    @property
    def engine(self) -> Engine:
        """The database engine (other stores of the same workspace share it)."""
        return self._engine

    @property
    def vault(self) -> Vault:
        """The vault that encrypts this store's secrets."""
        return self._vault

    @classmethod
    def default(
        cls, settings: Settings | None = None, workspace_id: str = DEFAULT_WORKSPACE
    ) -> IntegrationStore:
        """The store of ``workspace_id`` (by default the default workspace) on the
        configured (migrated) database; its vault encrypts with the key the database
        records as primary, when it holds it."""
        settings = settings or get_settings()
        engine = open_engine(settings)
        vault = Vault.from_settings(settings)
        follow(engine, vault.ring)
        return cls(engine, vault, workspace_id)

    def add(
        self,
        app_key: str,
        name: str,
        config: Mapping[str, Any],
        secrets: Mapping[str, str],
    ) -> Integration:
        """Save a new integration; ``ConfigError`` if one with this name exists."""
        name = _check_name(name)
        config, secret_values = _check_fields(config, secrets)
        now = utcnow()
        row = IntegrationRow(
            id=new_integration_id(),
            workspace_id=self.workspace_id,
            app_key=app_key,
            name=name,
            config=config,
            secrets=self._seal(secret_values, config),
            created_at=now,
            updated_at=now,
        )
        try:
            with write_transaction(self._engine) as conn, Session(bind=conn) as session:
                session.add(row)
                session.flush()
        except IntegrityError:
            if self._find(name) is not None:
                raise ConfigError(f"an integration named {name!r} already exists") from None
            raise
        return self._load(row, secret_values)

    def get(self, name_or_id: str) -> Integration:
        """The integration with this name or id; ``NotFoundError`` if there is none."""
        row = self._find(name_or_id)
        if row is None:
            raise self._not_found(name_or_id)
        return self._load(row)

    def list(self, app_key: str | None = None) -> builtins.list[Integration]:
        """All integrations of the workspace (of one app if ``app_key``), by name."""
        query = select(IntegrationRow).where(IntegrationRow.workspace_id == self.workspace_id)
        if app_key is not None:
            query = query.where(IntegrationRow.app_key == app_key)
        with Session(self._engine) as session:
            rows = session.scalars(query.order_by(IntegrationRow.name)).all()
            return [self._load(row) for row in rows]

    def update(
        self,
        name_or_id: str,
        config: Mapping[str, Any] | None = None,
        secrets: Mapping[str, str] | None = None,
        unset: Iterable[str] = (),
    ) -> Integration:
        """Merge new fields into an integration and return it as saved.

        ``config`` and ``secrets`` are merged over the stored fields (a field
        moves between them if given on the other side); ``unset`` removes
        fields from either. When ``base_url`` or ``host`` changes, every stored
        secret not given in ``secrets`` is removed (named in the answer's
        ``cleared``): secrets are not sent to a host they were not given for.
        Concurrent updates are serialized, so two processes refreshing different
        fields (an OAuth token, a webhook secret) do not lose each other's writes.
        """
        new_config, new_secrets = _check_fields(config or {}, secrets or {})
        removed = set(unset)
        with write_transaction(self._engine) as conn, Session(bind=conn) as session:
            row = session.scalars(self._lookup(name_or_id).with_for_update()).first()
            if row is None:
                raise self._not_found(name_or_id)
            merged_config = {k: v for k, v in row.config.items() if k not in new_secrets}
            merged_config.update(new_config)
            stored, _ = self._unseal(row)
            merged_secrets = {k: v for k, v in stored.items() if k not in new_config}
            merged_secrets.update(new_secrets)
            for key in removed:
                merged_config.pop(key, None)
                merged_secrets.pop(key, None)
            cleared: tuple[str, ...] = ()
            if binding(merged_config) != binding(row.config):
                cleared = tuple(sorted(k for k in merged_secrets if k not in new_secrets))
                merged_secrets = {k: merged_secrets[k] for k in new_secrets if k in merged_secrets}
            row.config = merged_config
            row.secrets = self._seal(merged_secrets, merged_config)
            row.updated_at = utcnow()
            session.flush()
            return self._load(row, merged_secrets, cleared)

    def remove(self, name_or_id: str) -> None:
        """Delete an integration; ``NotFoundError`` if there is none."""
        row = self._find(name_or_id)
        if row is None:
            raise self._not_found(name_or_id)
        with write_transaction(self._engine) as conn:
            conn.execute(delete(IntegrationRow).where(IntegrationRow.id == row.id))

    def _lookup(self, name_or_id: str) -> Select[tuple[IntegrationRow]]:
        # An id match wins over a name that happens to look like an id.
        return (
            select(IntegrationRow)
            .where(IntegrationRow.workspace_id == self.workspace_id)
            .where(or_(IntegrationRow.id == name_or_id, IntegrationRow.name == name_or_id))
            .order_by((IntegrationRow.id == name_or_id).desc())
            .limit(1)
        )

    def _find(self, name_or_id: str) -> IntegrationRow | None:
        with Session(self._engine, expire_on_commit=False) as session:
            row: IntegrationRow | None = session.scalars(self._lookup(name_or_id)).first()
            return row

    def _not_found(self, name_or_id: str) -> NotFoundError:
        where = (
            "" if self.workspace_id == DEFAULT_WORKSPACE else f" in workspace {self.workspace_id!r}"
        )
        return NotFoundError(f"no integration named or with id {name_or_id!r}{where}")

    def _seal(self, secrets: Mapping[str, str], config: Mapping[str, Any]) -> str:
        """The encrypted secrets, with where they are saved for."""
        return self._vault.encrypt_json({**secrets, _BOUND: binding(config)})

    def _unseal(self, row: IntegrationRow) -> tuple[dict[str, str], str | None]:
        """The decrypted secrets and where they were saved for (None: not recorded)."""
        try:
            found = self._vault.decrypt_json(row.secrets)
        except ConfigError as exc:
            raise ConfigError(f"integration {row.name!r}: {exc.message}") from None
        bound = found.pop(_BOUND, None)
        return found, bound

    def _load(
        self,
        row: IntegrationRow,
        secrets: Mapping[str, str] | None = None,
        cleared: tuple[str, ...] = (),
    ) -> Integration:
        if secrets is None:
            values, bound = self._unseal(row)
        else:  # just sealed with these: no need to decrypt them again
            values, bound = dict(secrets), binding(row.config)
        return Integration(
            id=row.id,
            workspace_id=row.workspace_id,
            app_key=row.app_key,
            name=row.name,
            config=MappingProxyType(dict(row.config)),
            secrets=MappingProxyType({k: SecretStr(v) for k, v in values.items()}),
            created_at=row.created_at,
            updated_at=row.updated_at,
            secrets_for=bound,
            cleared=cleared,
        )


def _check_name(name: str) -> str:
    cleaned = name.strip() if isinstance(name, str) else ""
    if not cleaned:
        raise ValidationError(
            "invalid integration", [FieldError("name", "must be a non-empty string", "required")]
        )
    return cleaned


def _check_fields(
    config: Mapping[str, Any], secrets: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Copies of ``config`` and ``secrets``, checked; errors never echo a secret value."""
    errors = [
        FieldError(f"secrets.{key}", "must be a string", "type")
        for key, value in secrets.items()
        if not isinstance(value, str)
    ]
    errors += [
        FieldError(str(key), "is given both as config and as a secret", "conflict")
        for key in sorted(set(config) & set(secrets), key=str)
    ]
    errors += [
        FieldError(f"secrets.{key}", "is a name calflow keeps for itself", "reserved")
        for key in secrets
        if key == _BOUND
    ]
    errors += [
        FieldError(repr(key), "field names must be strings", "type")
        for key in [*config, *secrets]
        if not isinstance(key, str)
    ]
    try:
        json.dumps(dict(config))
    except (TypeError, ValueError) as exc:
        errors.append(FieldError("config", f"must be JSON-serializable ({exc})", "type"))
    if errors:
        raise ValidationError("invalid integration fields", errors)
    return dict(config), dict(secrets)
