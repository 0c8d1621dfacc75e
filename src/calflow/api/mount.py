"""``mount_api``: the REST API under ``/api/v1`` on calflow's ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from calflow.api import errors
from calflow.api.deps import ApiState
from calflow.api.replays import ReplayManager
from calflow.db.engine import open_engine
from calflow.flowapp.registry import default_registry
from calflow.integrations import IntegrationStore
from calflow.settings import Settings
from calflow.vault import Vault
from calflow.workspaces import TokenStore, WorkspaceStore

PREFIX = "/api/v1"


def _routers() -> list[APIRouter]:
    from calflow.api import (
        routes_actions,
        routes_apps,
        routes_events,
        routes_integrations,
        routes_replays,
        routes_workflows,
        routes_workspace,
    )

    return [
        routes_workspace.router,
        routes_apps.router,
        routes_integrations.router,
        routes_actions.router,
        routes_workflows.router,
        routes_events.router,
        routes_replays.router,
    ]


def mount_api(app: FastAPI, settings: Settings, *, store: IntegrationStore | None = None) -> None:
    """Add the API routes, the error handlers and the API's state to ``app``.

    ``store`` (if given) names the database and vault to use; otherwise the configured
    ones. Shared objects (HTTP pools, background replay jobs) are closed when the app's
    lifespan ends.
    """
    engine = store.engine if store is not None else open_engine(settings)
    vault = store.vault if store is not None else Vault.from_settings(settings)
    state = ApiState(
        settings=settings,
        engine=engine,
        vault=vault,
        registry=default_registry(),
        tokens=TokenStore(engine),
        workspaces=WorkspaceStore(engine),
        replays=ReplayManager(settings),
    )
    app.state.api = state
    errors.install(app)
    for router in _routers():
        app.include_router(router, prefix=PREFIX)
    _close_on_shutdown(app, state)


def _close_on_shutdown(app: FastAPI, state: ApiState) -> None:
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with inner(a) as value:
            try:
                yield value
            finally:
                await state.aclose()

    app.router.lifespan_context = lifespan
