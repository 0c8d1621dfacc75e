"""``mount_api``: the REST API under ``/api/v1`` on calflow's ASGI app."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

from fastapi import APIRouter, FastAPI

from calflow.api import __doc__ as api_doc
from calflow.api import errors
from calflow.api.deps import ApiState
from calflow.api.replays import ReplayManager
from calflow.db.engine import open_engine
from calflow.flowapp.registry import default_registry
from calflow.integrations import IntegrationStore
from calflow.server.ratelimit import TokenRateLimit
from calflow.settings import Settings
from calflow.vault import Vault
from calflow.workspaces import TokenStore, WorkspaceStore

PREFIX = "/api/v1"


def _modules() -> list[ModuleType]:
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
        routes_workspace,
        routes_apps,
        routes_integrations,
        routes_actions,
        routes_workflows,
        routes_events,
        routes_replays,
    ]


def _tags(modules: list[ModuleType]) -> list[dict[str, Any]]:
    """OpenAPI tag descriptions from the route modules' docstrings (so the endpoint
    lists written there show in ``/openapi.json``)."""
    out: list[dict[str, Any]] = []
    for module in modules:
        router: APIRouter = module.router
        names = {t for route in router.routes for t in getattr(route, "tags", [])}
        for name in sorted(names, key=str):
            out.append({"name": str(name), "description": inspect.cleandoc(module.__doc__ or "")})
    return out


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
        rate=TokenRateLimit(settings.api_rate_limit),
    )
    app.state.api = state
    errors.install(app)
    modules = _modules()
    for module in modules:
        app.include_router(module.router, prefix=PREFIX)
    app.openapi_tags = [*(app.openapi_tags or []), *_tags(modules)]
    if not app.description:
        app.description = inspect.cleandoc(api_doc or "")
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
