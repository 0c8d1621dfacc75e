"""Fixtures of the workflow tests: a migrated engine on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from calflow.db.engine import open_engine, reset_engines
from calflow.settings import Settings
from db_fixtures import clean_calflow_env, isolated_pg_url, sqlite_url

__all__ = ["clean_calflow_env", "isolated_pg_url", "sqlite_url"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty, migrated database on SQLite and on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "isolated_pg_url"
    url = str(request.getfixturevalue(name))
    yield open_engine(Settings(home=str(tmp_path), database_url=url))
    reset_engines()
