"""Fixtures of the event normalizer tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from calflow.db.engine import open_engine, reset_engines
from calflow.events.inbox import Inbox
from calflow.settings import Settings
from db_fixtures import clean_calflow_env, isolated_pg_url, sqlite_url

from ._support import Sandbox, make_sandbox

__all__ = ["clean_calflow_env", "isolated_pg_url", "sqlite_url"]


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async for sandbox in make_sandbox():
        yield sandbox


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def inbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Inbox]:
    """An empty inbox on SQLite and on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "isolated_pg_url"
    url = str(request.getfixturevalue(name))
    yield Inbox(open_engine(Settings(home=str(tmp_path), database_url=url)))
    reset_engines()
