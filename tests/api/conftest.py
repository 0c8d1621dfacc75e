"""Fixtures of the REST API tests: the ASGI app on a fresh database, two workspaces with
a token each, and clients that send those tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from calflow.db.engine import reset_engines
from calflow.integrations import IntegrationStore
from calflow.server.app import create_app
from calflow.settings import Settings
from calflow.workspaces import TokenStore, WorkspaceStore
from db_fixtures import clean_calflow_env, isolated_pg_url, sqlite_url
from e2e.sandbox_process import SandboxProcess, sandbox_process

__all__ = ["clean_calflow_env", "isolated_pg_url", "sqlite_url"]

API_KEY = "cal_live_api_tests"
BASE = "http://calflow.test"


@dataclass
class Tenant:
    """One workspace: its id, name, token and a client that sends the token."""

    id: str
    name: str
    token: str
    client: httpx.AsyncClient
    store: IntegrationStore


@dataclass
class Api:
    app: FastAPI
    settings: Settings
    a: Tenant
    b: Tenant
    anonymous: httpx.AsyncClient


def client(app: FastAPI, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, headers=headers)


async def _api(tmp_path: Path, url: str) -> AsyncIterator[Api]:
    # no rate limit: these tests (schemathesis above all) call faster than a client
    # should; tests/security/test_rate_limit.py tests the limit
    settings = Settings(home=tmp_path, database_url=url, api_rate_limit="")
    store = IntegrationStore.default(settings)
    app = create_app(store, settings)
    workspaces = WorkspaceStore(store.engine)
    tokens = TokenStore(store.engine)
    tenants = []
    for name in ("alpha", "beta"):
        ws = workspaces.create(name)
        _, secret = tokens.create(ws.id, "tests")
        tenants.append(
            Tenant(ws.id, name, secret, client(app, secret),
                   IntegrationStore(store.engine, store.vault, ws.id))
        )  # fmt: skip
    anonymous = client(app)
    try:
        yield Api(app, settings, tenants[0], tenants[1], anonymous)
    finally:
        for c in (tenants[0].client, tenants[1].client, anonymous):
            await c.aclose()
        await app.state.api.aclose()
        reset_engines()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """The API on SQLite."""
    async for found in _api(tmp_path, f"sqlite:///{tmp_path / 'calflow.db'}"):
        yield found


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def any_api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Api]:
    """The API on SQLite and on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "isolated_pg_url"
    async for found in _api(tmp_path, str(request.getfixturevalue(name))):
        yield found


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxProcess]:
    """The provider sandbox as a process (Cal.com at ``sandbox.calcom``)."""
    with sandbox_process(API_KEY, seed=30) as sb:
        yield sb
