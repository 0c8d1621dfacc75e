"""Every URL a tenant sets through the API is checked, private targets are the operator's
decision (``CALFLOW_ALLOW_PRIVATE``), and secrets are only sent where they were given.

The receivers are real HTTP servers on 127.0.0.1 that record every request with its
headers, so a test can tell what calflow sent where (a Twilio auth token, or nothing)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from calflow.db import IntegrationRow
from calflow.db.engine import reset_engines
from calflow.integrations import IntegrationStore
from calflow.server.app import create_app
from calflow.settings import Settings
from calflow.workspaces import TokenStore, WorkspaceStore

from .conftest import BASE

TOKEN = "twilio_auth_TOKEN_9f1c44e0"
SID = "AC" + "0" * 32
METADATA = "http://169.254.169.254"


@dataclass
class Receiver:
    """A local HTTP server that answers a Twilio account and records each request."""

    url: str = ""
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def authorizations(self) -> list[str]:
        return [headers.get("authorization", "") for _, _, headers in self.seen]


@contextmanager
def receiver() -> Iterator[Receiver]:
    found = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            found.seen.append((self.command, self.path, headers))
            body = json.dumps({"sid": SID, "friendly_name": "x", "status": "active"}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def basic(token: str) -> str:
    return "Basic " + base64.b64encode(f"{SID}:{token}".encode()).decode()


@dataclass
class Tenant:
    client: httpx.AsyncClient
    store: IntegrationStore


@asynccontextmanager
async def tenant_api(tmp_path: Path, allow_private: str) -> AsyncIterator[Tenant]:
    """The API of a server whose operator set ``CALFLOW_ALLOW_PRIVATE=allow_private``."""
    settings = Settings(
        home=tmp_path, database_url=f"sqlite:///{tmp_path / 'c.db'}", allow_private=allow_private
    )
    root = IntegrationStore.default(settings)
    app = create_app(root, settings)
    ws = WorkspaceStore(root.engine).ensure("alpha")
    _, secret = TokenStore(root.engine).create(ws.id, "tests")
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=BASE,
        headers={"Authorization": f"Bearer {secret}"},
    )
    try:
        yield Tenant(client, IntegrationStore(root.engine, root.vault, ws.id))
    finally:
        await client.aclose()
        await app.state.api.aclose()
        reset_engines()


@pytest.fixture
async def tenant(tmp_path: Path) -> AsyncIterator[Tenant]:
    """An operator who allows loopback (the receivers here), nothing else."""
    async with tenant_api(tmp_path, "127.0.0.1") as found:
        yield found


async def add_twilio(tenant: Tenant, base_url: str, name: str = "sms") -> httpx.Response:
    return await tenant.client.post(
        "/api/v1/integrations",
        json={"app": "twilio", "name": name,
              "values": {"base_url": base_url, "account_sid": SID, "auth_token": TOKEN}},
    )  # fmt: skip


def refusal(resp: httpx.Response, field_name: str) -> str:
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert [d["field"] for d in error["details"]] == [field_name], error
    message = str(error["details"][0]["message"])
    assert "CALFLOW_ALLOW_PRIVATE" in message and TOKEN not in resp.text
    return message


@pytest.mark.parametrize(
    ("app", "values", "field_name"),
    [
        ("twilio", {"base_url": METADATA, "account_sid": SID, "auth_token": TOKEN}, "base_url"),
        ("cal_com", {"base_url": f"{METADATA}/latest", "api_key": TOKEN}, "base_url"),
        ("savvycal", {"base_url": "http://[::ffff:169.254.169.254]", "token": TOKEN}, "base_url"),
        ("email", {"host": "169.254.169.254", "password": TOKEN}, "host"),
        ("http", {"base_url": "http://10.0.0.7/api"}, "base_url"),
    ],
)
async def test_a_provider_pointed_at_the_metadata_address_is_refused_when_saved(
    tenant: Tenant, app: str, values: dict[str, str], field_name: str
) -> None:
    resp = await tenant.client.post(
        "/api/v1/integrations", json={"app": app, "name": "x", "values": values}
    )
    assert "not a public one" in refusal(resp, field_name)
    assert tenant.store.list() == []


async def test_a_patch_to_the_metadata_address_is_refused_and_changes_nothing(
    tenant: Tenant,
) -> None:
    with receiver() as local:
        created = await add_twilio(tenant, local.url)
        assert created.status_code == 201, created.text
        resp = await tenant.client.patch(
            "/api/v1/integrations/sms", json={"values": {"base_url": f"{METADATA}/"}}
        )
        refusal(resp, "base_url")
        kept = tenant.store.get("sms")
        assert kept.config["base_url"] == local.url and kept.value("auth_token") == TOKEN


async def test_patch_base_url_then_test_never_sends_the_auth_token_to_the_new_host(
    tenant: Tenant,
) -> None:
    with receiver() as old, receiver() as new:
        assert (await add_twilio(tenant, old.url)).status_code == 201
        first = await tenant.client.post("/api/v1/integrations/sms/test")
        assert first.json()["ok"] is True, first.text
        assert old.authorizations() == [basic(TOKEN)]

        moved = await tenant.client.patch(
            "/api/v1/integrations/sms", json={"values": {"base_url": new.url}}
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["cleared_secrets"] == ["auth_token"]
        assert moved.json()["secrets"] == []
        tested = await tenant.client.post("/api/v1/integrations/sms/test")
        assert tested.json()["ok"] is False and "auth_token" in tested.json()["message"]
        assert new.seen == [] and len(old.seen) == 1

        # the token sent again in the same PATCH as the new URL: that one goes there
        again = await tenant.client.patch(
            "/api/v1/integrations/sms",
            json={"values": {"base_url": old.url, "auth_token": "second_TOKEN_7a"}},
        )
        assert again.json()["cleared_secrets"] == [] and again.json()["secrets"] == ["auth_token"]
        await tenant.client.patch(
            "/api/v1/integrations/sms",
            json={"values": {"base_url": new.url, "auth_token": "third_TOKEN_4c"}},
        )
        assert (await tenant.client.post("/api/v1/integrations/sms/test")).json()["ok"] is True
        assert new.authorizations() == [basic("third_TOKEN_4c")]
        assert basic(TOKEN) not in new.authorizations()


async def test_secrets_saved_for_another_host_are_not_sent_even_if_the_row_changes(
    tenant: Tenant,
) -> None:
    """Whatever changes the stored base_url (a hand edit, a path that bypasses the store),
    the recorded target of the secrets is checked before anything is sent."""
    with receiver() as old, receiver() as new:
        assert (await add_twilio(tenant, old.url)).status_code == 201
        with tenant.store.engine.begin() as conn:
            conn.execute(update(IntegrationRow).values(config={"base_url": new.url,
                                                               "account_sid": SID}))  # fmt: skip
        tested = await tenant.client.post("/api/v1/integrations/sms/test")
        assert tested.json()["ok"] is False, tested.text
        assert "saved for another base_url or host" in tested.json()["message"]
        assert new.seen == [] and old.seen == []
        assert TOKEN not in tested.text


async def test_a_stored_base_url_is_checked_again_at_request_time(tmp_path: Path) -> None:
    """Saved while the operator allowed the address; the operator has since stopped."""
    with receiver() as local:
        async with tenant_api(tmp_path, "127.0.0.1") as before:
            assert (await add_twilio(before, local.url)).status_code == 201
        async with tenant_api(tmp_path, "") as after:
            tested = await after.client.post("/api/v1/integrations/sms/test")
            assert tested.json()["ok"] is False
            assert "CALFLOW_ALLOW_PRIVATE" in tested.json()["message"]
            run = await after.client.post(
                "/api/v1/actions/twilio/GetAccount/run", json={"integration": "sms", "input": {}}
            )
            assert run.status_code == 400 and "base_url" in run.json()["error"]["message"]
        assert local.seen == []


async def test_private_targets_are_the_operators_decision(tmp_path: Path) -> None:
    with receiver() as local:
        async with tenant_api(tmp_path, "") as closed:
            refusal(await add_twilio(closed, local.url), "base_url")
            # the http app's own allow_private cannot open what the operator keeps closed
            resp = await closed.client.post(
                "/api/v1/integrations",
                json={"app": "http", "name": "h", "values": {"allow_private": "true"}},
            )
            assert "operator" in refusal(resp, "allow_private")
            # nor can a replay's
            closed.store.add("cal_com", "cal", {}, {"api_key": "k"})
            replay = await closed.client.post(
                "/api/v1/replays",
                json={"integration": "cal", "target": f"{local.url}/hook", "allow_private": True},
            )
            assert "operator" in refusal(replay, "allow_private")
            private = await closed.client.post(
                "/api/v1/replays", json={"integration": "cal", "target": f"{local.url}/hook"}
            )
            assert "pass allow_private=true" not in refusal(private, "target")
        (tmp_path / "open").mkdir()
        async with tenant_api(tmp_path / "open", "127.0.0.1") as opened:
            assert (await add_twilio(opened, local.url)).status_code == 201
            assert (await opened.client.post("/api/v1/integrations/sms/test")).json()["ok"]
            opened.store.add("cal_com", "cal", {}, {"api_key": "k"})
            meta = await opened.client.post(
                "/api/v1/replays",
                json={"integration": "cal", "target": f"{METADATA}/hook", "allow_private": True},
            )
            assert "169.254.169.254" in refusal(meta, "target")


async def test_a_stored_smtp_host_is_checked_before_connecting(tenant: Tenant) -> None:
    """Stored without the API's check (an older calflow, a hand edit): the SMTP test
    refuses the host by name; no connection is tried (the address would time out)."""
    tenant.store.add("email", "mail", {"host": "169.254.169.254", "port": "25",
                                       "security": "none"}, {"password": TOKEN})  # fmt: skip
    tested = await tenant.client.post("/api/v1/integrations/mail/test")
    body = tested.json()
    assert body["ok"] is False and body["probe"] == "TestConnection"
    assert "host" in body["message"] and "link-local" in body["message"]
    assert "CALFLOW_ALLOW_PRIVATE" in body["message"] and TOKEN not in tested.text
