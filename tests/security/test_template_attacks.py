"""Template, document and trigger attacks against ``calflow serve`` as a real process
(issue #16, items 1, 2, 3 and 7), on SQLite and PostgreSQL, each while a probe measures
``/healthz`` and webhook latency: every probe request answers within 1 s and the server
grows by at most ``GROWTH_MB``.

- template bombs (constant folding, nested loops, widths, joins) at validate and apply:
  refused naming the field and the limit, nothing saved;
- a YAML alias bomb and a document nested 50,000 deep: 422 naming the limit;
- the same bombs at run time, fed by a booking's metadata (no sample booking can know
  them at apply time): the step fails with ``TEMPLATE_ERROR`` naming the field and limit;
- a workspace whose ``trigger.when`` costs all its limits allow, flooded with bookings:
  another workspace's booking still gets its run within 1 s.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from calflow.db.engine import reset_engines
from calflow.integrations import IntegrationStore
from calflow.sandbox.calcom.webhooks import dumps, sign
from calflow.workspaces import TokenStore, WorkspaceStore
from db_fixtures import clean_calflow_env, isolated_pg_url

from .support import WEBHOOK_SECRET, Guarded, LatencyProbe, guarded_server

pytestmark = pytest.mark.slow

__all__ = ["clean_calflow_env", "isolated_pg_url"]

GROWTH_MB = 150
PROBE_BOUND_S = 1.0
DISPATCH_BOUND_S = 3.0
"""A booking of another workspace waits a few costly evaluations at most, not the flood's
15 s of matching (the margin is for a loaded 2-core machine)."""

ALIAS_BOMB = "\n".join(
    ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 9)]
)
BOMBS = {
    "subject": "{{ 'x' * 4*10**8 }}",
    "text": "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}",
    "html": "{{ '{:>999999999}'.format(1) }}{{ 'x' | center(400000000) }}",
}
BOMB_LIMITS = {
    "subject": "a value of 400,000,000 characters or items (at most 100,000)",
    "text": "more than 100,000 steps (loop iterations, calls, outputs)",
    "html": "a width or precision of 999,999,999 (at most 100,000)",
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str | None:
    return None if request.param == "sqlite" else str(request.getfixturevalue("isolated_pg_url"))


def _rss_mb(guarded: Guarded) -> float:
    status = Path(f"/proc/{guarded.server.proc.pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def _client(guarded: Guarded, token: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=guarded.server.url, headers=headers, timeout=30)


def _mail(input_: dict[str, str], name: str = "bomb", when: str | None = None) -> dict[str, Any]:
    trigger: dict[str, Any] = {"kinds": ["created"]}
    if when is not None:
        trigger["when"] = when
    step = {"id": "mail", "action": "email.SendEmail", "integration": "mail",
            "input": {"to": "{{ attendee.email }}", **input_}}  # fmt: skip
    return {"name": name, "trigger": trigger, "steps": [step]}


def _delivery(uid: str, metadata: dict[str, str] | None = None) -> tuple[bytes, dict[str, str]]:
    payload = {"type": "30min", "title": "Attack", "uid": uid, "bookingId": 9,
               "startTime": "2026-12-01T09:00:00Z", "endTime": "2026-12-01T09:30:00Z",
               "organizer": {"id": 1, "name": "Host", "email": "host@example.com",
                             "timeZone": "Europe/Paris"},
               "attendees": [{"name": "Ann Lee", "email": "ann@example.com",
                              "timeZone": "Europe/Paris"}],
               "eventTypeId": 101, "status": "ACCEPTED", "metadata": metadata or {}}  # fmt: skip
    body = dumps({"triggerEvent": "BOOKING_CREATED", "createdAt": "2026-11-20T10:00:00.000Z",
                  "payload": payload}).encode()  # fmt: skip
    headers = {"content-type": "application/json",
               "x-cal-signature-256": sign(WEBHOOK_SECRET, body)}  # fmt: skip
    return body, headers


@pytest.fixture
def guarded(tmp_path: Path, database_url: str | None) -> Iterator[tuple[Guarded, str]]:
    with guarded_server(tmp_path, database_url, api_rate_limit="") as g:
        _, token = TokenStore(g.home.store().engine).create(g.home.store().workspace_id, "t")
        reset_engines()
        yield g, token


def _fields(resp: httpx.Response) -> dict[str, str]:
    assert resp.status_code == 422, resp.text
    return {d["field"]: d["message"] for d in resp.json()["error"]["details"]}


def test_bombs_at_validate_apply_and_run_time_leave_the_server_answering(
    guarded: tuple[Guarded, str],
) -> None:
    g, token = guarded
    with _client(g, token) as api:
        _bombs(g, api)


def _bombs(g: Guarded, api: httpx.Client) -> None:
    allow = {"allow_missing_integrations": "true"}
    # warm the server up (first requests import and compile) before measuring it
    assert api.get("/api/v1/workflows").status_code == 200
    before = _rss_mb(g)
    with LatencyProbe(g) as probe:
        doc = _mail(BOMBS)
        expected = {f"steps.0.input.{k}": f"breaks a template limit: {v}"
                    for k, v in BOMB_LIMITS.items()}  # fmt: skip
        checked = api.post("/api/v1/workflows/validate", json=doc, params=allow).json()
        assert {e["field"]: e["message"] for e in checked["errors"]} == expected
        assert _fields(api.post("/api/v1/workflows", json=doc, params=allow)) == expected
        yaml_bomb = api.post("/api/v1/workflows", content=ALIAS_BOMB, params=allow,
                             headers={"content-type": "application/yaml"})  # fmt: skip
        assert _fields(yaml_bomb) == {
            "": "has more than 10,000 values once its aliases are expanded"
        }
        deep = api.post("/api/v1/workflows", content="[" * 50_000 + "]" * 50_000,
                        headers={"content-type": "application/json"})  # fmt: skip
        assert _fields(deep) == {"": "nests more than 32 levels"}
        assert api.get("/api/v1/workflows").json()["items"] == []

        # at run time: the sizes come from the booking, which no sample can know
        size, loops = "(booking.metadata.size | default(1) | int)", "(booking.metadata.loops "
        loops += "| default(1) | int)"
        runtime = _mail({"subject": f"{{{{ 'x' * {size} }}}}",
                         "text": f"{{% for i in range({loops}) %}}{{% for j in range({loops}) %}}"
                                 "{% endfor %}{% endfor %}"},
                        when="booking.metadata.size is defined or booking.metadata.loops is "
                             "defined")  # fmt: skip
        made = api.post("/api/v1/workflows", json=runtime, params=allow)
        assert made.status_code == 201, made.text
        for key, value in (("size", "1000000000"), ("loops", "10000")):
            body, headers = _delivery(f"attack-{key}", {key: value})
            assert g.server.post(g.hook_path, body, headers).status_code == 200
        failed = _wait_runs(api, 2, status="failed")
        time.sleep(1.0)  # the probe keeps measuring after the runs
    probe.assert_each_within(PROBE_BOUND_S)
    errors = sorted(_first_error(api, run) for run in failed)
    assert errors == [
        ("TEMPLATE_ERROR", "steps.mail.input.subject: a value of 1,000,000,000 characters or "
                           "items (at most 100,000)"),
        ("TEMPLATE_ERROR", "steps.mail.input.text: more than 100,000 steps (loop iterations, "
                           "calls, outputs)"),
    ], errors  # fmt: skip
    assert _rss_mb(g) - before < GROWTH_MB, (before, _rss_mb(g))


def _wait_runs(api: httpx.Client, count: int, status: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        items: list[dict[str, Any]] = api.get("/api/v1/runs", params={"status": status}).json()[
            "items"
        ]
        if len(items) >= count:
            return items
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} {status} runs after 60 s")


def _first_error(api: httpx.Client, run: dict[str, Any]) -> tuple[str, str]:
    steps = api.get(f"/api/v1/runs/{run['id']}").json()["steps"]
    error = steps[0]["error"]
    return str(error["code"]), str(error["message"])


def test_a_workspace_with_a_costly_when_does_not_delay_another(
    guarded: tuple[Guarded, str],
) -> None:
    g, token = guarded
    store = g.home.store()
    beta = WorkspaceStore(store.engine).create("beta")
    _, beta_token = TokenStore(store.engine).create(beta.id, "beta")
    hook = IntegrationStore(store.engine, store.vault, beta.id).add(
        "cal_com", "beta-cal", {"base_url": "http://cal.invalid"},
        {"api_key": "cal_live_beta", "webhook_secret": WEBHOOK_SECRET},
    )  # fmt: skip
    reset_engines()
    with _client(g, beta_token) as beta_api, _client(g, token) as api:
        _flood(g, beta_api, api, hook.id)


def _flood(g: Guarded, beta_api: httpx.Client, api: httpx.Client, hook_id: str) -> None:
    allow = {"allow_missing_integrations": "true"}
    costly = "range(90000) | map('abs') | sum > 0"  # within every limit, ~0.1 s a booking
    plain = {"subject": "s", "text": "x"}
    made = beta_api.post("/api/v1/workflows", json=_mail(plain, "costly", costly), params=allow)
    assert made.status_code == 201, made.text
    mine = _mail(plain, "mine", "booking.uid.startswith('mine-')")
    assert api.post("/api/v1/workflows", json=mine, params=allow).status_code == 201
    with LatencyProbe(g) as probe:
        for n in range(150):
            body, headers = _delivery(f"flood-{n}")
            assert g.server.post(f"/hooks/{hook_id}", body, headers).status_code == 200
        time.sleep(1.0)  # the dispatcher is deep in the flood (15 s of matching)
        uid = f"mine-{uuid.uuid4().hex[:8]}"
        body, headers = _delivery(uid)
        assert g.server.post(g.hook_path, body, headers).status_code == 200
        run = _wait_for(api, uid)
        flooded = len(beta_api.get("/api/v1/runs", params={"limit": 200}).json()["items"])
    probe.assert_each_within(PROBE_BOUND_S)
    event = api.get("/api/v1/events", params={"booking_uid": uid}).json()["items"][0]
    waited = (_at(run["created_at"]) - _at(event["received_at"])).total_seconds()
    assert flooded < 150, "the flood was matched before the booking came: make it larger"
    assert waited <= DISPATCH_BOUND_S, waited


def _wait_for(api: httpx.Client, uid: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        items = api.get("/api/v1/runs", params={"booking_uid": uid}).json()["items"]
        if items:
            return dict(items[0])
        time.sleep(0.05)
    raise AssertionError(f"no run for {uid} after 30 s")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
