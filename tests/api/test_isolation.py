"""Workspace isolation: a token sees and changes only its own workspace's resources.

Another workspace's integrations, events, runs, workflows and replay jobs answer 404
(never 403: that would tell the caller they exist), for every method, and never show
up in lists.
"""

from __future__ import annotations

from typing import Any

from .conftest import Api
from .seed import SECRET, seed, workflow


async def test_another_workspace_is_invisible_and_unchangeable(any_api: Api) -> None:
    api = any_api
    mine = await seed(api.a)
    theirs = await seed(api.b)
    a = api.a.client

    # lists hold only A's items
    for path, key, own, other in [
        ("/api/v1/integrations", "id", mine.integration, theirs.integration),
        ("/api/v1/events", "id", mine.event, theirs.event),
        ("/api/v1/runs", "id", mine.run, theirs.run),
        ("/api/v1/workflows", "id", mine.workflow, theirs.workflow),
        ("/api/v1/replays", "job", mine.job, theirs.job),
    ]:
        resp = await a.get(path)
        assert resp.status_code == 200, (path, resp.text)
        ids = [item[key] for item in resp.json()["items"]]
        assert own in ids and other not in ids, path
    filtered = await a.get("/api/v1/events", params={"integration": theirs.integration})
    assert filtered.json()["items"] == []
    filtered = await a.get("/api/v1/events", params={"booking_uid": "uid-beta"})
    assert filtered.json()["items"] == []

    # every way of reaching one of B's resources is a 404
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"/api/v1/integrations/{theirs.integration}", None),
        ("PATCH", f"/api/v1/integrations/{theirs.integration}", {"config": {"base_url": "x"}}),
        ("DELETE", f"/api/v1/integrations/{theirs.integration}", None),
        ("POST", f"/api/v1/integrations/{theirs.integration}/test", None),
        ("POST", "/api/v1/actions/cal_com/GetBooking/run",
         {"integration": theirs.integration, "input": {"uid": "uid-beta"}}),
        ("POST", "/api/v1/fetchers/cal_com/event_types", {"integration": theirs.integration}),
        ("GET", f"/api/v1/events/{theirs.event}", None),
        ("GET", f"/api/v1/runs/{theirs.run}", None),
        ("POST", f"/api/v1/runs/{theirs.run}/retry", None),
        ("GET", f"/api/v1/workflows/{theirs.workflow}", None),
        ("PUT", f"/api/v1/workflows/{theirs.workflow}", workflow()),
        ("DELETE", f"/api/v1/workflows/{theirs.workflow}", None),
        ("POST", f"/api/v1/workflows/{theirs.workflow}/enable", None),
        ("POST", f"/api/v1/workflows/{theirs.workflow}/disable", None),
        ("GET", f"/api/v1/replays/{theirs.job}", None),
        ("POST", f"/api/v1/replays/{theirs.job}/cancel", None),
        ("POST", f"/api/v1/replays/{theirs.job}/resume", None),
        ("POST", "/api/v1/replays", {"integration": theirs.integration, "target": "calflow"}),
    ]  # fmt: skip
    for method, path, body in calls:
        resp = await a.request(method, path, json=body)
        assert resp.status_code == 404, (method, path, resp.status_code, resp.text)
        assert resp.json()["error"]["code"] == "NOT_FOUND"

    # B's resources are untouched, and B still sees them
    b = api.b.client
    got = await b.get(f"/api/v1/integrations/{theirs.integration}")
    assert got.status_code == 200 and got.json()["config"]["base_url"].endswith("/calcom")
    assert (await b.get(f"/api/v1/workflows/{theirs.workflow}")).json()["enabled"] is True
    assert (await b.get(f"/api/v1/events/{theirs.event}")).status_code == 200
    assert (await b.get(f"/api/v1/runs/{theirs.run}")).status_code == 200
    assert (await b.get(f"/api/v1/replays/{theirs.job}")).json()["status"] == "failed"
    # a name that exists in both workspaces resolves to the caller's own
    assert (await a.get("/api/v1/integrations/main")).json()["id"] == mine.integration
    assert (await b.get("/api/v1/integrations/main")).json()["id"] == theirs.integration
    assert (await a.get("/api/v1/workflows/notify")).json()["id"] == mine.workflow


async def test_secrets_are_never_in_any_response(api: Api) -> None:
    mine = await seed(api.a)
    a = api.a.client
    seen = []
    seen.append(await a.get("/api/v1/integrations"))
    seen.append(await a.get(f"/api/v1/integrations/{mine.integration}"))
    seen.append(await a.patch(f"/api/v1/integrations/{mine.integration}",
                              json={"secrets": {"api_key": SECRET + "2"}}))  # fmt: skip
    seen.append(await a.post("/api/v1/integrations", json={
        "app": "cal_com", "name": "second",
        "config": {"api_key": SECRET, "base_url": "http://127.0.0.1:9/calcom"}}))  # fmt: skip
    bad = {"app": "cal_com", "name": "bad", "values": {"api_key": SECRET, "nope": SECRET}}
    seen.append(await a.post("/api/v1/integrations", json=bad))
    seen.append(await a.post(f"/api/v1/integrations/{mine.integration}/test"))
    seen.append(await a.get("/api/v1/replays"))
    for resp in seen:
        assert SECRET not in resp.text, resp.text
    created = seen[1].json()
    assert created["secrets"] == ["api_key"]
    # a secret field given under config is still stored as a secret, and never shown
    second = seen[3].json()
    assert second["secrets"] == ["api_key"] and "api_key" not in second["config"]
    assert seen[4].status_code == 422
    assert [d["field"] for d in seen[4].json()["error"]["details"]] == ["nope"]
    assert seen[5].status_code == 200 and seen[5].json()["ok"] is False
