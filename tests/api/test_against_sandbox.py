"""Actions, fetchers and replays through the API, against the Cal.com sandbox process."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from e2e.sandbox_process import SandboxProcess
from replay.conftest import SECRET, start_receiver, stop

from .conftest import API_KEY, Api, Tenant

pytestmark = pytest.mark.slow

ATTENDEE = {"name": "Ada Lovelace", "email": "ada@example.com", "timeZone": "Europe/Paris",
            "phoneNumber": "+33 6 12 34 56 78"}  # fmt: skip


async def connect(tenant: Tenant, sandbox: SandboxProcess, key: str = API_KEY) -> str:
    resp = await tenant.client.post(
        "/api/v1/integrations",
        json={"app": "cal_com", "name": "cal", "values": {"api_key": key,
              "base_url": sandbox.calcom}},
    )  # fmt: skip
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def slots(client: httpx.AsyncClient, integration: str) -> list[Any]:
    resp = await client.post(
        "/api/v1/fetchers/cal_com/slots",
        json={"integration": integration, "context": {"eventTypeId": 101, "days": 14}},
    )
    assert resp.status_code == 200, resp.text
    return [o["value"] for o in resp.json()["options"]]


async def test_book_through_the_api_records_a_run_and_an_event_of_that_workspace(
    api: Api, sandbox: SandboxProcess
) -> None:
    a = api.a.client
    integration = await connect(api.a, sandbox)
    await connect(api.b, sandbox)
    start = (await slots(a, integration))[-1]
    resp = await a.post(
        "/api/v1/actions/cal_com/BookMeeting/run",
        json={"integration": "cal",
              "input": {"eventTypeId": "101", "start": start, "attendee": ATTENDEE}},
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["port"], body["success"], body["error"]) == ("success", True, None)
    assert body["duration_ms"] > 0
    uid = body["data"]["uid"]
    run = (await a.get(f"/api/v1/runs/{body['run_id']}")).json()
    assert run["status"] == "succeeded" and run["booking_uid"] == uid
    assert [s["port"] for s in run["steps"]] == ["success"]
    assert API_KEY not in str(run)
    events = (await a.get("/api/v1/events", params={"booking_uid": uid})).json()["items"]
    assert [(e["kind"], e["source"]) for e in events] == [("created", "action")]
    assert events[0]["event"]["attendees"][0]["phone"] == "+33612345678"
    # the other workspace sees neither the event nor the run
    b = api.b.client
    assert (await b.get("/api/v1/events", params={"booking_uid": uid})).json()["items"] == []
    assert (await b.get(f"/api/v1/runs/{body['run_id']}")).status_code == 404
    assert (await b.get(f"/api/v1/events/{events[0]['id']}")).status_code == 404
    # the same slot again: an answer on the conflict port, with its reason
    again = await a.post(
        "/api/v1/actions/cal_com/BookMeeting/run",
        json={"integration": integration,
              "input": {"eventTypeId": 101, "start": start, "attendee": ATTENDEE}},
    )  # fmt: skip
    assert again.status_code == 200
    assert again.json()["port"] == "conflict" and again.json()["error"]["code"]


async def test_invalid_action_input_is_422_with_each_field(
    api: Api, sandbox: SandboxProcess
) -> None:
    await connect(api.a, sandbox)
    resp = await api.a.client.post(
        "/api/v1/actions/cal_com/BookMeeting/run",
        json={"integration": "cal",
              "input": {"eventTypeId": 101, "start": "tomorrow", "attendee": 5}},
    )  # fmt: skip
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    fields = {d["field"] for d in error["details"]}
    assert {"input.start", "input.attendee"} <= fields, fields
    for path, body, code in [
        ("/api/v1/actions/cal_com/Nope/run", {"integration": "cal"}, 404),
        ("/api/v1/actions/nope/BookMeeting/run", {"integration": "cal"}, 404),
        ("/api/v1/actions/cal_com/BookMeeting/run", {"integration": "missing"}, 404),
        ("/api/v1/actions/cal_com/BookMeeting/run", {"input": {}}, 422),
        ("/api/v1/actions/cal_com/BookMeeting/run", {"integration": "cal", "input": []}, 422),
        ("/api/v1/actions/twilio/SendSms/run", {"integration": "cal", "input": {}}, 422),
    ]:
        got = await api.a.client.post(path, json=body)
        assert got.status_code == code, (path, body, got.text)
        assert got.json()["error"]["message"]
    not_json = await api.a.client.post(
        "/api/v1/actions/cal_com/BookMeeting/run",
        content=b"{nope", headers={"content-type": "application/json"},
    )  # fmt: skip
    assert not_json.status_code == 422 and not_json.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_fetchers_answer_options_or_a_structured_error(
    api: Api, sandbox: SandboxProcess
) -> None:
    a = api.a.client
    good = await connect(api.a, sandbox)
    resp = await a.post("/api/v1/fetchers/cal_com/event_types", json={"integration": good})
    assert resp.status_code == 200
    labels = {o["value"]: o["label"] for o in resp.json()["options"]}
    assert labels[101] == "30 Minute Meeting (30m)"
    searched = await a.post(
        "/api/v1/fetchers/cal_com/event_types", json={"integration": good, "search": "60 min"}
    )
    assert [o["value"] for o in searched.json()["options"]] == [102]
    # a context the fetcher needs is missing: 422 naming it
    missing = await a.post("/api/v1/fetchers/cal_com/slots", json={"integration": good})
    assert missing.status_code == 422
    assert missing.json()["error"]["details"][0]["field"] == "context.eventTypeId"
    # the provider refuses the integration's key: 502, the provider's reason, no secret
    bad = await a.post(
        "/api/v1/integrations",
        json={"app": "cal_com", "name": "badkey",
              "values": {"api_key": "cal_live_wrong_key_x", "base_url": sandbox.calcom}},
    )  # fmt: skip
    refused = await a.post("/api/v1/fetchers/cal_com/event_types", json={"integration": "badkey"})
    assert refused.status_code == 502, refused.text
    assert refused.json()["error"]["code"] == "PROVIDER_AUTH_ERROR"
    assert "cal_live_wrong_key_x" not in refused.text
    tested = await a.post(f"/api/v1/integrations/{bad.json()['id']}/test")
    assert tested.json()["ok"] is False and tested.json()["code"] == "AUTH_ERROR"
    assert (await a.post(f"/api/v1/integrations/{good}/test")).json()["ok"] is True
    unknown = await a.post("/api/v1/fetchers/cal_com/nope", json={"integration": good})
    assert unknown.status_code == 404


async def _until(client: httpx.AsyncClient, job: str, *statuses: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        data: dict[str, Any] = (await client.get(f"/api/v1/replays/{job}")).json()
        if data["status"] in statuses and not data["running"]:
            return data
        assert time.monotonic() < deadline, data
        await asyncio.sleep(0.1)


async def test_replay_start_progress_cancel_resume(api: Api, sandbox: SandboxProcess) -> None:
    a = api.a.client
    await connect(api.a, sandbox)
    proc, receiver = start_receiver()
    try:
        started = await a.post(
            "/api/v1/replays",
            json={"integration": "cal", "target": receiver.url, "secret": SECRET, "rate": 10,
                  "concurrency": 1, "allow_private": True},
        )  # fmt: skip
        assert started.status_code == 202, started.text
        job = started.json()["job"]
        assert started.json()["status"] == "running" and started.json()["running"] is True
        assert SECRET not in started.text
        await asyncio.sleep(0.5)
        cancelled = await a.post(f"/api/v1/replays/{job}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        stopped = await _until(a, job, "cancelled")
        assert 0 < stopped["progress"]["sent"] < 30, stopped
        resumed = await a.post(f"/api/v1/replays/{job}/resume")
        assert resumed.status_code == 202, resumed.text
        assert (await a.post(f"/api/v1/replays/{job}/resume")).status_code == 409
        done = await _until(a, job, "completed")
        assert done["totals"]["failed"] == 0 and done["totals"]["items"] >= 30, done
        assert done["totals"]["sent"] > stopped["progress"]["sent"]
        assert done["finished_at"] and done["options"]["rate"] == 10
        stats = receiver.stats()
        assert stats["unique"] == done["totals"]["sent"] and stats["bad_signatures"] == 0
        listed = (await a.get("/api/v1/replays")).json()["items"]
        assert [j["job"] for j in listed] == [job]
        assert (await api.b.client.get("/api/v1/replays")).json()["items"] == []
    finally:
        stop(proc)


async def test_replay_into_calflow_fills_this_workspace_only(
    api: Api, sandbox: SandboxProcess
) -> None:
    a = api.a.client
    await connect(api.a, sandbox)
    started = await a.post("/api/v1/replays", json={"integration": "cal", "target": "calflow"})
    assert started.status_code == 202, started.text
    done = await _until(a, started.json()["job"], "completed")
    assert done["totals"]["items"] >= 30 and done["totals"]["failed"] == 0
    events = (await a.get("/api/v1/events", params={"limit": 500})).json()["items"]
    assert len(events) >= 20 and {e["source"] for e in events} == {"replay"}
    assert {e["event"]["history"] for e in events} == {True}  # old changes start no workflow
    assert (await api.b.client.get("/api/v1/events")).json()["items"] == []


async def test_a_dry_run_keeps_its_counts_on_the_job(api: Api, sandbox: SandboxProcess) -> None:
    a = api.a.client
    await connect(api.a, sandbox)
    body = {"integration": "cal", "target": "calflow", "dry_run": True, "limit": 7,
            "run_workflows": True}  # fmt: skip
    started = await a.post("/api/v1/replays", json=body)
    assert started.status_code == 202, started.text
    done = await _until(a, started.json()["job"], "completed")
    assert done["totals"]["items"] == 0  # a dry run records no item...
    counts = done["counts"]  # ...but its counts (a replaced original is skipped, not sent)
    assert (counts["fetched"], counts["skipped"], counts["sent"]) == (7, 7, 0)
    assert counts["would_send"] == counts["skipped_reasons"]["dry run"] > 0
    assert done["options"]["run_workflows"] is True
    assert (await a.get("/api/v1/events")).json()["items"] == []


async def test_replay_bad_options_are_422(api: Api, sandbox: SandboxProcess) -> None:
    a = api.a.client
    await connect(api.a, sandbox)
    for body, field in [
        ({"integration": "cal", "target": "ftp://x"}, "target"),
        ({"integration": "cal", "target": "calflow", "since": "soon"}, "since"),
        ({"integration": "cal", "target": "calflow", "concurrency": 0}, "concurrency"),
        ({"integration": "cal", "target": "calflow", "since": "2030-01-02",
          "until": "2030-01-01"}, "until"),
        ({"integration": "cal", "target": "https://hooks.example.com/x", "run_workflows": True},
         "run_workflows"),
    ]:  # fmt: skip
        resp = await a.post("/api/v1/replays", json=body)
        assert resp.status_code == 422, (body, resp.text)
        assert field in [d["field"] for d in resp.json()["error"]["details"]], resp.text
    private = await a.post("/api/v1/replays", json={"integration": "cal",
                                                    "target": "http://127.0.0.1:9/x"})  # fmt: skip
    assert private.status_code == 422, private.text
