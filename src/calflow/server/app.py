"""The calflow server: one ASGI app for the webhook receiver, the REST API, MCP and the console.

The workflow engine is not part of the app: ``calflow serve`` runs it beside the app, on
a thread and event loop of its own (``calflow.workflows.engine.EngineThread``) or in
child worker processes (``--workers N``), so no batch of runs shares the receiver's
event loop.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from calflow.api import mount_api
from calflow.console import mount_console
from calflow.integrations import IntegrationStore
from calflow.mcp.http import mount_mcp
from calflow.server.hooks import Receiver, hooks_route, misaddressed_route
from calflow.server.metrics_route import metrics_route
from calflow.settings import Settings, get_settings

log = logging.getLogger("calflow.server")


def create_app(store: IntegrationStore | None = None, settings: Settings | None = None) -> FastAPI:
    """The ASGI app on ``store`` (default: the configured database)."""
    settings = settings or get_settings()
    store = store or IntegrationStore.default(settings)
    app = FastAPI(title="calflow", docs_url=None, redoc_url=None)
    receiver = Receiver(store, settings.webhook_max_bytes)
    app.state.receiver = receiver
    app.router.routes.append(hooks_route(receiver))
    app.router.routes.append(misaddressed_route())
    # Prometheus metrics for the operator (off without CALFLOW_METRICS_TOKEN)
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    app.router.routes.append(metrics_route(token, store.engine))

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    # the REST API under /api/v1, and the one error shape for every route
    mount_api(app, settings, store=store)
    # MCP (AI agents) at /mcp, authenticated with the same workspace tokens
    mount_mcp(app, store, app.state.api.rate)
    # the web console at / (index.html and /assets/…; plain routes, not in the OpenAPI)
    mount_console(app)

    return app
