"""Workflows CRUD (JSON and YAML), and events and runs in pages with filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import yaml

from calflow.events.inbox import Inbox
from calflow.workflows.runs import RunStore

from .conftest import Api
from .seed import add_web, booking_event, workflow


async def test_workflow_crud(any_api: Api) -> None:
    a = any_api.a.client
    await add_web(a)
    made = await a.post("/api/v1/workflows", json=workflow())
    assert made.status_code == 201, made.text
    wf = made.json()
    assert (wf["name"], wf["version"], wf["enabled"], wf["result"]) == (
        "notify",
        1,
        True,
        "created",
    )
    assert wf["steps"] == ["hook"] and wf["definition"]["trigger"] == {"kinds": ["created"]}
    again = await a.post("/api/v1/workflows", json=workflow())
    assert again.status_code == 409 and again.json()["error"]["details"][0]["field"] == "name"
    # PUT as YAML: a new version; the name may be left out
    changed = workflow(url="https://hooks.example.com/y")
    del changed["name"]
    put = await a.put(f"/api/v1/workflows/{wf['id']}", content=yaml.safe_dump(changed),
                      headers={"content-type": "application/yaml"})  # fmt: skip
    assert put.status_code == 200, put.text
    assert (put.json()["version"], put.json()["result"]) == (2, "updated")
    same = await a.put("/api/v1/workflows/notify", json=workflow(url="https://hooks.example.com/y"))
    assert same.json()["result"] == "unchanged"
    renamed = await a.put("/api/v1/workflows/notify", json=workflow(name="other"))
    assert renamed.status_code == 422
    assert renamed.json()["error"]["details"][0]["field"] == "name"
    # enable / disable, list, get by id and by name
    off = await a.post("/api/v1/workflows/notify/disable")
    assert (off.json()["enabled"], off.json()["runs_waiting"]) == (False, 0)
    assert (await a.get(f"/api/v1/workflows/{wf['id']}")).json()["enabled"] is False
    assert (await a.post(f"/api/v1/workflows/{wf['id']}/enable")).json()["enabled"] is True
    listed = (await a.get("/api/v1/workflows")).json()["items"]
    assert [w["name"] for w in listed] == ["notify"]
    gone = await a.delete("/api/v1/workflows/notify")
    assert gone.status_code == 200 and gone.json() == {
        "id": wf["id"], "deleted": True, "name": "notify", "runs_cancelled": 0, "runs_kept": 0,
    }  # fmt: skip
    assert (await a.get(f"/api/v1/workflows/{wf['id']}")).status_code == 404
    assert (await a.delete(f"/api/v1/workflows/{wf['id']}")).status_code == 404


async def test_invalid_workflows_are_422_with_details_and_validate_saves_nothing(
    api: Api,
) -> None:
    a = api.a.client
    broken = workflow()
    broken["steps"][0]["action"] = "http.Nope"
    broken["steps"][0]["at"] = {"before_start": "soon"}
    resp = await a.post("/api/v1/workflows", json=broken)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"] and all(d["field"].startswith("steps") for d in error["details"])
    checked = await a.post("/api/v1/workflows/validate", json=broken)
    assert checked.status_code == 200 and checked.json()["valid"] is False
    assert checked.json()["errors"] == error["details"]
    await add_web(a)
    ok = await a.post("/api/v1/workflows/validate", json=workflow())
    assert ok.json() == {"valid": True, "name": "notify", "errors": [], "warnings": []}
    assert (await a.get("/api/v1/workflows")).json()["items"] == []
    for content, ctype, code in [
        (b"name: [unclosed", "application/yaml", 422),
        (b"{not json", "application/json", 422),
        (b"[]", "application/json", 422),
        (b"day: 2030-01-01", "text/yaml", 422),
        (b"name: x", "text/plain", 415),
        (b"\xff\xfe", "application/json", 422),
    ]:
        got = await a.post("/api/v1/workflows", content=content, headers={"content-type": ctype})
        assert got.status_code == code, (content, got.text)
        assert got.json()["error"]["message"]
    schema = await a.get("/api/v1/schemas/workflow")
    assert schema.status_code == 200 and "steps" in schema.json()["properties"]


async def test_events_in_pages_with_filters(any_api: Api) -> None:
    api = any_api
    inbox = Inbox(api.a.store.engine, api.a.id)
    base = datetime(2030, 1, 1, tzinfo=UTC)
    ids = []
    for n in range(7):
        kind = "cancelled" if n % 3 == 0 else "created"
        when = base + timedelta(minutes=n if n != 4 else 3)  # two events share a time
        event = booking_event(f"uid-{n}", kind, received_at=when,
                              provider="savvycal" if n == 6 else "cal_com")  # fmt: skip
        ids.append(inbox.publish(event).event_id)
    Inbox(api.b.store.engine, api.b.id).publish(booking_event("uid-b", received_at=base))
    a = api.a.client
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await a.get("/api/v1/events", params=params)).json()
        seen += [e["id"] for e in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 7 and set(seen) == set(ids)
    received = [(await a.get(f"/api/v1/events/{i}")).json()["received_at"] for i in seen]
    assert received == sorted(received, reverse=True)

    async def count(**params: str) -> int:
        resp = await a.get("/api/v1/events", params=params)
        assert resp.status_code == 200, resp.text
        return len(resp.json()["items"])

    assert await count(kind="cancelled") == 3
    assert await count(provider="savvycal") == 1
    assert await count(booking_uid="uid-2") == 1
    assert await count(since="2030-01-01T00:03:00Z") == 4
    assert await count(until="2030-01-01T00:03:00Z") == 3
    assert await count(since="2030-01-01T00:01:00Z", until="2030-01-01T00:02:00Z") == 1
    assert await count(integration="nope") == 0
    for params in ({"cursor": "garbage!"}, {"cursor": "WzEsMl0"}, {"since": "whenever"},
                   {"limit": "0"}, {"limit": "100000"}):  # fmt: skip
        bad = await a.get("/api/v1/events", params=params)
        assert bad.status_code == 422, (params, bad.text)
        assert bad.json()["error"]["details"], params
    assert (await a.get("/api/v1/events/evt_nope")).status_code == 404


async def test_runs_in_pages_with_filters(any_api: Api) -> None:
    api = any_api
    runs = RunStore(api.a.store.engine, api.a.id)
    for n in range(5):
        runs.create(f"run_{n}", workflow_id="wf_1", workflow_name="w1" if n < 3 else "w2",
                    workflow_version=1, event_id=f"evt_{n}", provider="cal_com",
                    booking_uid=f"uid-{n}")  # fmt: skip
    runs.update("run_1", status="failed", dead=1)
    RunStore(api.b.store.engine, api.b.id).create(
        "run_b", workflow_id="wf_1", workflow_name="w1", workflow_version=1,
        event_id="evt_b", provider="cal_com", booking_uid="uid-b",
    )  # fmt: skip
    a = api.a.client
    first = (await a.get("/api/v1/runs", params={"limit": 2})).json()
    second = (await a.get("/api/v1/runs", params={"limit": 2, "cursor": first["next_cursor"]})
              ).json()  # fmt: skip
    third = (await a.get("/api/v1/runs", params={"limit": 2, "cursor": second["next_cursor"]})
             ).json()  # fmt: skip
    seen = [r["id"] for p in (first, second, third) for r in p["items"]]
    assert sorted(seen) == [f"run_{n}" for n in range(5)] and third["next_cursor"] is None
    assert len((await a.get("/api/v1/runs", params={"workflow": "w1"})).json()["items"]) == 3
    dead = (await a.get("/api/v1/runs", params={"dead": "true"})).json()["items"]
    assert [r["id"] for r in dead] == ["run_1"]
    assert [r["id"] for r in (await a.get("/api/v1/runs", params={"status": "failed"})).json()[
        "items"]] == ["run_1"]  # fmt: skip
    detail = (await a.get("/api/v1/runs/run_0")).json()
    assert detail["steps"] == [] and detail["status"] == "queued"
    # only failed runs can be retried: others are a conflict, not a server error
    retry = await a.post("/api/v1/runs/run_0/retry")
    assert retry.status_code == 409 and retry.json()["error"]["code"] == "CONFLICT"


async def test_disable_counts_waiting_runs_and_delete_cancels_or_keeps_them(
    any_api: Api,
) -> None:
    api = any_api
    a = api.a.client
    await add_web(a)
    made = {}
    for name in ("notify", "other"):
        made[name] = (await a.post("/api/v1/workflows", json=workflow(name=name))).json()
    runs = RunStore(api.a.store.engine, api.a.id)
    for n, (name, status) in enumerate([("notify", "waiting"), ("notify", "succeeded"),
                                        ("other", "waiting")]):  # fmt: skip
        runs.create(f"run_{n}", workflow_id=made[name]["id"], workflow_name=name,
                    workflow_version=1, event_id=f"evt_{n}", provider="cal_com",
                    booking_uid=f"uid-{n}")  # fmt: skip
        runs.update(f"run_{n}", status=status, current_step="hook")
    off = (await a.post("/api/v1/workflows/notify/disable")).json()
    assert (off["enabled"], off["runs_waiting"]) == (False, 1)
    assert (await a.get("/api/v1/runs/run_0")).json()["status"] == "waiting"
    kept = await a.delete("/api/v1/workflows/other", params={"keep_runs": "true"})
    assert (kept.json()["runs_cancelled"], kept.json()["runs_kept"]) == (0, 1)
    gone = (await a.delete(f"/api/v1/workflows/{made['notify']['id']}")).json()
    assert (gone["runs_cancelled"], gone["runs_kept"]) == (1, 0)
    run = (await a.get("/api/v1/runs/run_0")).json()
    assert (run["status"], run["cancel_reason"]) == ("cancelled", "workflow deleted")
    assert run["steps"][-1]["error"] == {"reason": "workflow deleted"}
    assert (await a.get("/api/v1/runs/run_2")).json()["status"] == "waiting"
    bad = await a.delete("/api/v1/workflows/nope", params={"keep_runs": "maybe"})
    assert bad.status_code == 422


async def test_a_dead_lettered_run_is_retried_from_its_failed_step(any_api: Api) -> None:
    api = any_api
    a = api.a.client
    await add_web(a)
    made = (await a.post("/api/v1/workflows", json=workflow())).json()
    published = Inbox(api.a.store.engine, api.a.id).publish(booking_event("uid-retry"))
    runs = RunStore(api.a.store.engine, api.a.id)
    runs.create("run_dead", workflow_id=made["id"], workflow_name="notify", workflow_version=1,
                event_id=published.event_id, provider="cal_com",
                booking_uid="uid-retry")  # fmt: skip
    runs.update("run_dead", status="failed", dead=1, current_step="hook",
                error={"step": "hook", "code": "HTTP_ERROR"})  # fmt: skip
    retried = await a.post("/api/v1/runs/run_dead/retry")
    assert retried.status_code == 200, retried.text
    body = retried.json()
    assert (body["run"], body["from_step"], body["attempt"], body["first_attempt"]) == (
        "run_dead", "hook", 2, 1)  # fmt: skip
    shown = (await a.get("/api/v1/runs/run_dead")).json()
    assert shown["status"] == "queued" and shown["dead"] is False and shown["error"] is None
    again = await a.post("/api/v1/runs/run_dead/retry")  # no longer failed: a conflict
    assert again.status_code == 409
    other = await api.b.client.post("/api/v1/runs/run_dead/retry")  # another workspace's: 404
    assert other.status_code == 404
