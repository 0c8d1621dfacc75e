"""The calflow server: one ASGI app for the webhook receiver (and, later, API and console)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from calflow.integrations import IntegrationStore
from calflow.server.hooks import Receiver, error, hooks_route
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

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        return error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, "VALIDATION_ERROR", str(exc.errors()))

    @app.exception_handler(Exception)
    async def crash(_: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error: %s: %s", type(exc).__name__, exc)
        return error(503, "UNAVAILABLE", "calflow could not handle this request; retry later")

    return app
