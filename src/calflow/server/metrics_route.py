"""``GET /metrics``: Prometheus' text format, for the operator only.

The counts add up every workspace (``calflow.metrics``): a tenant that could read them
would learn how busy the others are. So the route is off (404) unless the operator sets
``CALFLOW_METRICS_TOKEN``, and then answers only ``Authorization: Bearer <token>``
(compared in constant time); anything else is 401. No API token opens it: those belong
to workspaces.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from calflow.server.admission import error_body

__all__ = ["metrics_route"]

_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _refused(status: int, code: str, message: str) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(error_body(code, message), status, headers, "application/json")


def metrics_route(token: str | None, engine: Engine) -> Route:
    """The ``/metrics`` route, opened by ``token`` (None: off), with the queue gauges of
    the database of ``engine`` (``calflow.server.queue_gauges``)."""
    expected = f"Bearer {token}".encode() if token else None
    gauges: list[Any] = []

    async def metrics(request: Request) -> Response:
        if expected is None:
            return _refused(
                404, "NOT_FOUND",
                "metrics are off; the operator turns them on with CALFLOW_METRICS_TOKEN",
            )  # fmt: skip
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return _refused(
                401, "UNAUTHENTICATED",
                "send the operator's metrics token as 'Authorization: Bearer <token>' "
                "(CALFLOW_METRICS_TOKEN)",
            )  # fmt: skip
        from calflow.metrics import exposition

        if not gauges:
            from calflow.server.queue_gauges import QueueGauges

            gauges.append(QueueGauges(engine))
        text = await asyncio.to_thread(exposition, *gauges)  # it reads the database
        return Response(text, 200, media_type=_CONTENT_TYPE)

    return Route("/metrics", metrics, methods=["GET"], name="metrics")
