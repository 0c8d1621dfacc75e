"""The console's routes: ``/``, ``/assets/…`` and ``/favicon.svg``, with cache headers."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from calflow.console.assets import Asset, AssetStore

log = logging.getLogger("calflow.console")

INDEX_CACHE = "no-cache"
"""index.html names the current asset files: revalidate it on every load (ETag)."""
ASSET_CACHE = "public, max-age=31536000, immutable"
"""Asset file names carry a hash of their content, so a name never changes meaning."""
ICON_CACHE = "public, max-age=86400"

CSP = "; ".join(
    (
        "default-src 'self'",
        # ajv (the JSON-Schema validator of the forms) compiles schemas to functions
        "script-src 'self' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

MISSING = (
    "<!doctype html><title>calflow console</title><p>The console's files are missing from "
    "this installation (src/calflow/console/static). Build them with <code>cd console-src "
    "&amp;&amp; npm ci &amp;&amp; npm run build</code>. The REST API is at /api/v1.</p>"
)


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    return header.strip() == "*" or etag in (t.strip() for t in header.split(","))


def _serve(request: Request, asset: Asset, cache: str, extra: dict[str, str]) -> Response:
    headers = {"ETag": asset.etag, "Cache-Control": cache, "X-Content-Type-Options": "nosniff"}
    headers.update(extra)
    if _matches(request.headers.get("if-none-match"), asset.etag):
        return Response(status_code=304, headers=headers)
    body = b"" if request.method == "HEAD" else asset.body
    response = Response(body, media_type=asset.content_type, headers=headers)
    if request.method == "HEAD":
        response.headers["Content-Length"] = str(len(asset.body))
    return response


def _not_found(path: str) -> Response:
    # the API's error shape, for a client that asked for an asset that is not there
    return Response(
        '{"error":{"code":"NOT_FOUND","message":"no console file '
        + path.replace('"', "").replace("\\", "")[:200]
        + '","details":[]}}',
        status_code=404,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def console_routes(store: AssetStore) -> list[Route]:
    """The console's routes over ``store``."""

    async def index(request: Request) -> Response:
        asset = store.get("index.html")
        if asset is None:
            log.warning("the console's built files are missing; serving a notice at /")
            return Response(MISSING, status_code=503, media_type="text/html; charset=utf-8")
        return _serve(request, asset, INDEX_CACHE, PAGE_HEADERS)

    async def asset(request: Request) -> Response:
        path = "assets/" + str(request.path_params["path"])
        found = store.get(path)
        if found is None:
            return _not_found(path)
        return _serve(request, found, ASSET_CACHE, {})

    async def icon(request: Request) -> Response:
        found = store.get("favicon.svg")
        if found is None:
            return _not_found("favicon.svg")
        return _serve(request, found, ICON_CACHE, {})

    methods = ["GET", "HEAD"]
    return [
        Route("/", index, methods=methods, name="console"),
        Route("/assets/{path:path}", asset, methods=methods, name="console-asset"),
        Route("/favicon.svg", icon, methods=methods, name="console-icon"),
    ]


def mount_console(app: Starlette, store: AssetStore | None = None) -> None:
    """Serve the console at ``/`` on ``app`` (plain routes: not in the OpenAPI schema)."""
    app.router.routes.extend(console_routes(store or AssetStore()))
