"""Integrations through the API: create, list, update, delete, with clear refusals."""

from __future__ import annotations

from .conftest import Api


async def test_integration_lifecycle_and_refusals(any_api: Api) -> None:
    a = any_api.a.client
    made = await a.post(
        "/api/v1/integrations",
        json={"app": "cal_com", "name": "main", "values": {"api_key": "cal_live_k1"}},
    )
    assert made.status_code == 201, made.text
    main = made.json()
    assert main["config"] == {"base_url": "https://api.cal.com"}  # the declared default
    assert main["secrets"] == ["api_key"]
    again = {"app": "cal_com", "name": "main", "secrets": {"api_key": "cal_live_k2"}}
    taken = await a.post("/api/v1/integrations", json=again)
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "CONFLICT"
    for body, status, field in [
        ({"app": "nope", "name": "x"}, 404, None),
        ({"app": "cal_com", "name": "x"}, 422, ""),  # no way to sign in: api_key or OAuth
        ({"app": "cal_com", "name": "", "secrets": {"api_key": "k"}}, 422, "name"),
        ({"app": "cal_com", "name": "x" * 201, "secrets": {"api_key": "k"}}, 422, "name"),
        ({"app": "cal_com", "name": "x", "secrets": {"api_key": 5}}, 422, "secrets.api_key"),
        ({"app": "cal_com", "name": "x", "config": {"api_key": "a"}, "secrets": {"api_key": "b"}},
         422, "api_key"),
        ({"app": "cal_com", "name": "x", "colour": "red"}, 422, "colour"),
    ]:  # fmt: skip
        resp = await a.post("/api/v1/integrations", json=body)
        assert resp.status_code == status, (body, resp.text)
        if field is not None:
            assert field in [d["field"] for d in resp.json()["error"]["details"]], resp.text
    # update: merge config, replace a secret, unset fields; a required field stays
    patched = await a.patch("/api/v1/integrations/main",
                            json={"config": {"base_url": "http://127.0.0.1:1/calcom"},
                                  "secrets": {"api_key": "cal_live_k3"}})  # fmt: skip
    assert patched.status_code == 200, patched.text
    assert patched.json()["config"]["base_url"] == "http://127.0.0.1:1/calcom"
    assert "cal_live_k3" not in patched.text
    need = await a.patch("/api/v1/integrations/main", json={"unset": ["api_key"]})
    assert need.status_code == 422
    assert "api_key" in need.json()["error"]["details"][0]["message"]
    unknown = await a.patch("/api/v1/integrations/main", json={"unset": ["colour"]})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"][0]["field"] == "unset.colour"
    await a.post("/api/v1/integrations", json={"app": "http", "name": "web"})
    only = (await a.get("/api/v1/integrations", params={"app": "http"})).json()["items"]
    assert [i["name"] for i in only] == ["web"]
    assert (await a.delete(f"/api/v1/integrations/{main['id']}")).json()["deleted"] is True
    assert (await a.get(f"/api/v1/integrations/{main['id']}")).status_code == 404
    assert (await a.patch("/api/v1/integrations/main", json={})).status_code == 404


async def test_apps_catalogue(api: Api) -> None:
    a = api.a.client
    apps = (await a.get("/api/v1/apps")).json()["items"]
    cal = next(x for x in apps if x["key"] == "cal_com")
    assert cal["receives_webhooks"] is True
    assert cal["credential_schema"]["properties"]["api_key"]["writeOnly"] is True
    book = next(x for x in cal["actions"] if x["key"] == "BookMeeting")
    assert [p["key"] for p in book["ports"]] == ["success", "conflict", "error"]
    assert book["ports"][2]["error"] is True and book["ports"][1]["label"] == "Conflict"
    assert {f["key"] for f in cal["fetchers"]} >= {"event_types", "slots"}
    slots = next(f for f in cal["fetchers"] if f["key"] == "slots")
    assert slots["depends_on"] == ["eventTypeId"]
    one = (await a.get("/api/v1/apps/cal_com/actions/book_meeting")).json()
    assert "oneOf" in one["input_schema"] and "x-fetcher" in str(one["input_schema"])
    assert (await a.get("/api/v1/apps/cal_com")).json()["key"] == "cal_com"
    assert (await a.get("/api/v1/apps/nope")).status_code == 404
    assert (await a.get("/api/v1/apps/cal_com/actions/Nope")).status_code == 404
    assert (await api.anonymous.get("/api/v1/apps")).status_code == 401
