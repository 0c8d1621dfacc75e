"""Shared fixtures: a temp-SQLite integration store and an in-memory integration."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pytest
from pydantic import SecretStr

from calflow.db import get_engine, migrate
from calflow.integrations import Integration, IntegrationStore
from calflow.vault import Vault
from db_fixtures import clean_calflow_env, sqlite_url

__all__ = ["clean_calflow_env", "sqlite_url"]


@pytest.fixture
def store(sqlite_url: str) -> IntegrationStore:
    """A real IntegrationStore on a migrated SQLite file in tmp_path."""
    engine = get_engine(sqlite_url)
    migrate(engine)
    return IntegrationStore(engine, Vault([Vault.generate_key()]))


MakeIntegration = Callable[..., Integration]


@pytest.fixture
def make_integration() -> MakeIntegration:
    """Build an in-memory Integration (never stored) with SecretStr secrets."""

    def make(
        config: Mapping[str, Any] | None = None,
        secrets: Mapping[str, str] | None = None,
        *,
        app_key: str = "fixture",
        name: str = "mem",
    ) -> Integration:
        now = datetime(2026, 1, 1, tzinfo=UTC)
        return Integration(
            id=f"int_{name}",
            workspace_id="default",
            app_key=app_key,
            name=name,
            config=MappingProxyType(dict(config or {})),
            secrets=MappingProxyType({k: SecretStr(v) for k, v in (secrets or {}).items()}),
            created_at=now,
            updated_at=now,
        )

    return make
