"""The console is served at ``/`` by calflow's own app: types, caching, and no shadowing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from calflow.console import AssetStore, mount_console
from calflow.console.routes import ASSET_CACHE, INDEX_CACHE
from calflow.db.engine import reset_engines
from calflow.integrations import IntegrationStore
from calflow.server.app import create_app
from calflow.settings import Settings
from db_fixtures import clean_calflow_env

__all__ = ["clean_calflow_env"]

BASE = "http://calflow.test"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The whole server app (receiver, API, MCP, console) on a fresh SQLite home."""
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'calflow.db'}")
    app = create_app(IntegrationStore.default(settings), settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        yield c
    await app.state.api.aclose()
    reset_engines()


def _asset_paths(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="\./(assets/[^"]+)"', html)


async def test_index_names_its_assets_and_is_revalidated(client: httpx.AsyncClient) -> None:
    resp = await client.get("/")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/html; charset=utf-8"
    assert resp.headers["cache-control"] == INDEX_CACHE
    assert "frame-ancestors 'none'" in resp.headers["content-security-policy"]
    assert '<div id="root">' in resp.text
    assets = _asset_paths(resp.text)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    assert "http" not in "".join(assets), "no CDN: the console works offline"

    again = await client.get("/", headers={"If-None-Match": resp.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


async def test_assets_have_their_types_and_are_cached_for_good(
    client: httpx.AsyncClient,
) -> None:
    index = (await client.get("/")).text
    seen = set()
    for path in _asset_paths(index):
        resp = await client.get(f"/{path}")
        assert resp.status_code == 200, path
        kind = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}
        assert resp.headers["content-type"] == kind[path.rsplit(".", 1)[1]], path
        assert resp.headers["cache-control"] == ASSET_CACHE
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert int(resp.headers["content-length"]) == len(resp.content) > 0
        seen.add(path.rsplit(".", 1)[1])
        head = await client.head(f"/{path}")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == resp.headers["content-length"]
    assert seen == {"js", "css"}
    icon = await client.get("/favicon.svg")
    assert icon.headers["content-type"] == "image/svg+xml" and b"<svg" in icon.content


@pytest.mark.parametrize("path", ["/assets/nope.js", "/assets/../__init__.py", "/assets/"])
async def test_unknown_asset_paths_are_404_in_the_error_shape(
    client: httpx.AsyncClient, path: str
) -> None:
    resp = await client.get(path)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "NOT_FOUND"


async def test_the_console_shadows_no_other_route(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"ok": True}
    schema = (await client.get("/openapi.json")).json()
    console = [p for p in schema["paths"] if p == "/" or p.startswith(("/assets", "/favicon"))]
    assert console == [], "the console's routes stay out of the API schema"
    assert "/api/v1/workspace" in schema["paths"]
    unauthenticated = await client.get("/api/v1/workspace")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["code"] == "UNAUTHENTICATED"
    hook = await client.post("/hooks/int_unknown", content=b"{}")
    assert hook.status_code == 404 and hook.headers["content-type"].startswith("application/json")


async def test_a_missing_build_is_a_clear_notice_not_a_crash(tmp_path: Path) -> None:
    app = Starlette()
    mount_console(app, AssetStore("calflow.events"))  # a package without static/
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        resp = await c.get("/")
    assert resp.status_code == 503
    assert "npm run build" in resp.text


def test_only_known_file_kinds_are_served() -> None:
    files = AssetStore().files
    assert "index.html" in files and "favicon.svg" in files
    assert all(not p.endswith((".py", ".pyc")) for p in files)
    assert all(a.etag.startswith('"') and a.etag.endswith('"') for a in files.values())
