"""The receiver under bad input: a clear 4xx, nothing stored, an audit line, and never a 5xx."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calflow.db.engine import reset_engines
from calflow.events.inbox import KEPT_DELIVERIES, Inbox
from calflow.integrations import IntegrationStore
from calflow.server.app import create_app
from calflow.server.audit import AuditLine
from calflow.settings import Settings

from .test_receiver import CAL_BODY, cal_sign, client, store

__all__ = ["client", "store"]


def signed(body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    return raw, {"X-Cal-Signature-256": cal_sign(raw), "Content-Type": "application/json"}


def cal(trigger: str, uid: str = "uid-bad-1", created_at: str = "2026-11-20T10:00:00.000Z") -> Any:
    body = copy.deepcopy(CAL_BODY)
    body["triggerEvent"] = trigger
    body["createdAt"] = created_at
    body["payload"]["uid"] = uid
    return body


async def test_a_non_json_content_type_is_415_and_stores_nothing(
    client: httpx.AsyncClient, store: IntegrationStore
) -> None:
    raw, headers = signed(cal("BOOKING_CREATED"))
    url = f"/hooks/{store.get('cc').id}"
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        resp = await client.post(url, content=raw, headers={**headers, "Content-Type": ctype})
        assert resp.status_code == 415, ctype
        assert resp.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert Inbox(store.engine).count() == 0
    for ctype in ("application/json; charset=utf-8", "application/webhook+json"):
        resp = await client.post(url, content=raw, headers={**headers, "Content-Type": ctype})
        assert resp.status_code == 200, ctype
    assert Inbox(store.engine).count() == 1


async def test_a_signed_unknown_trigger_is_kept_as_other(
    client: httpx.AsyncClient, store: IntegrationStore
) -> None:
    raw, headers = signed({"triggerEvent": "RECORDING_READY", "createdAt": "2026-11-20T10:00:00Z",
                           "payload": {"downloadLink": "https://cal.example/rec/1"}})  # fmt: skip
    resp = await client.post(f"/hooks/{store.get('cc').id}", content=raw, headers=headers)
    assert resp.status_code == 200, resp.text
    shown = Inbox(store.engine).get(resp.json()["event"])
    assert shown["kind"] == "other" and shown["original_type"] == "RECORDING_READY"
    assert shown["raw"]["payload"]["downloadLink"] == "https://cal.example/rec/1"


async def test_a_flood_of_duplicates_is_all_2xx_and_one_event(
    client: httpx.AsyncClient, store: IntegrationStore
) -> None:
    raw, headers = signed(cal("BOOKING_CREATED", uid="uid-flood"))
    url = f"/hooks/{store.get('cc').id}"
    answers = await asyncio.gather(
        *(client.post(url, content=raw, headers=headers) for _ in range(40))
    )
    assert [a.status_code for a in answers] == [200] * 40
    assert sum(not a.json()["duplicate"] for a in answers) == 1
    inbox = Inbox(store.engine)
    assert inbox.count() == 1
    shown = inbox.get(answers[0].json()["event"])
    # every copy counted on the event; only the first KEPT_DELIVERIES stored as rows
    assert len(shown["deliveries"]) == KEPT_DELIVERIES and shown["duplicates"] == 39
    assert sum(not d["duplicate"] for d in shown["deliveries"]) == 1


async def test_out_of_order_deliveries_do_not_resurrect_a_cancelled_booking(
    client: httpx.AsyncClient, store: IntegrationStore
) -> None:
    url = f"/hooks/{store.get('cc').id}"
    cancelled = cal("BOOKING_CANCELLED", uid="uid-order", created_at="2026-11-20T10:05:00Z")
    cancelled["payload"]["status"] = "CANCELLED"
    raw, headers = signed(cancelled)
    first = await client.post(url, content=raw, headers=headers)
    raw, headers = signed(cal("BOOKING_CREATED", uid="uid-order"))
    late = await client.post(url, content=raw, headers=headers)
    assert first.status_code == late.status_code == 200
    assert first.json()["stale"] is False and late.json()["stale"] is True
    shown = Inbox(store.engine).get(late.json()["event"])
    assert shown["kind"] == "created" and shown["ordering"] == "stale"


async def test_refused_deliveries_leave_a_rate_limited_audit_line_without_the_body(
    client: httpx.AsyncClient, store: IntegrationStore, caplog: pytest.LogCaptureFixture
) -> None:
    raw = json.dumps(cal("BOOKING_CREATED", uid="uid-forged-secret-marker")).encode()
    url = f"/hooks/{store.get('cc').id}"
    with caplog.at_level(logging.WARNING, logger="calflow.audit"):
        for _ in range(30):
            resp = await client.post(url, content=raw, headers={"X-Cal-Signature-256": "0" * 64})
            assert resp.status_code == 401
    lines = [r.getMessage() for r in caplog.records if r.name == "calflow.audit"]
    assert 1 <= len(lines) <= 6  # a burst of 5, not one per forged delivery
    assert all("BAD_SIGNATURE" in line and store.get("cc").id in line for line in lines)
    assert not any("uid-forged-secret-marker" in line for line in lines)
    assert Inbox(store.engine).count() == 0


def test_the_audit_line_reports_what_it_suppressed(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    audit = AuditLine(burst=2, interval=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="calflow.audit"):
        written = [audit.refused("int_a", "BAD_SIGNATURE", "1.2.3.4", 10, []) for _ in range(7)]
        assert written == [True, True, False, False, False, False, False]
        assert audit.refused("int_b", "BAD_SIGNATURE", "1.2.3.4", 10, [])  # its own bucket
        now[0] = 10.0
        assert audit.refused("int_a", "BAD_SIGNATURE", "1.2.3.4", 10, [])
    assert "+5 more refused" in caplog.records[-1].getMessage()


class SyncClient:
    """The ASGI app driven from synchronous code (hypothesis runs sync tests)."""

    def __init__(self, store: IntegrationStore, tmp_path: Path) -> None:
        app = create_app(store, Settings(home=tmp_path, webhook_max_bytes=4096))
        self.loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=app)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://calflow")

    def post(self, url: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.loop.run_until_complete(self.client.post(url, content=content, headers=headers))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


@pytest.fixture
def sync_client(store: IntegrationStore, tmp_path: Path) -> Iterator[SyncClient]:
    c = SyncClient(store, tmp_path)
    yield c
    c.close()
    reset_engines()


def _nested(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    _nested,
    max_leaves=20,
)
_fields = st.sampled_from(["triggerEvent", "createdAt", "payload", "type", "id", "occurred_at"])
_triggers = st.sampled_from(["BOOKING_CREATED", "BOOKING_CANCELLED", "MEETING_ENDED",
                             "BOOKING_NO_SHOW_UPDATED", "event.created", "NOPE", ""])  # fmt: skip


@st.composite
def _bodies(draw: st.DrawFn) -> bytes:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(st.binary(max_size=300))
    if choice == 1:
        return json.dumps(draw(_json)).encode()
    base: dict[str, Any] = copy.deepcopy(CAL_BODY)
    base["triggerEvent"] = draw(_triggers)
    for _ in range(draw(st.integers(0, 3))):
        payload = base["payload"]
        target = payload if isinstance(payload, dict) and draw(st.booleans()) else base
        target[draw(_fields | st.sampled_from(["startTime", "uid", "attendees", "status"]))] = draw(
            _json
        )
    return json.dumps(base).encode()


def test_fuzzed_deliveries_never_get_a_5xx(
    sync_client: SyncClient, store: IntegrationStore
) -> None:
    ids = [store.get("cc").id, store.get("sc").id, "int_nope"]

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        body=_bodies(),
        target=st.sampled_from(ids),
        sign=st.sampled_from(["cal", "savvy", "bad", "none"]),
        ctype=st.sampled_from([None, "application/json", "text/plain", "", "application/json;x"]),
    )
    def run(body: bytes, target: str, sign: str, ctype: str | None) -> None:
        headers: dict[str, str] = {}
        if ctype is not None:
            headers["Content-Type"] = ctype
        if sign == "cal":
            headers["X-Cal-Signature-256"] = cal_sign(body)
        elif sign == "savvy":
            headers["X-SavvyCal-Signature"] = "sha256=" + cal_sign(body).upper()
        elif sign == "bad":
            headers["X-Cal-Signature-256"] = "z" * 64
        resp = sync_client.post(f"/hooks/{target}", content=body, headers=headers)
        assert resp.status_code in (200, 400, 401, 404, 413, 415, 422), resp.text
        assert "error" in resp.json() or resp.json()["ok"] is True

    run()
