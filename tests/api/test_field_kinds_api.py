"""Integration fields are checked by kind through the REST API too (the same check as the
CLI's ``--set``): a value of the wrong kind is 422 naming the field, and nothing is saved."""

from __future__ import annotations

from typing import Any

from .conftest import Api


def details(resp: Any) -> dict[str, str]:
    return {d["field"]: d["message"] for d in resp.json()["error"]["details"]}


async def test_a_value_of_the_wrong_kind_is_refused_on_create_and_patch(api: Api) -> None:
    a = api.a.client
    base = {"host": "127.0.0.1"}
    refused: list[tuple[dict[str, Any], str, str]] = [
        ({"security": "plain"}, "security", "starttls, ssl, none"),
        ({"port": 0}, "port", "1 to 65535"),
        ({"verify_tls": "maybe"}, "verify_tls", "true or false"),
    ]
    for values, field, words in refused:
        body = {"app": "email", "name": "mail", "values": {**base, **values}}
        resp = await a.post("/api/v1/integrations", json=body)
        assert resp.status_code == 422, (values, resp.text)
        assert words in details(resp)[field], resp.text
    assert (await a.get("/api/v1/integrations")).json()["items"] == []

    values = {**base, "port": 2525, "verify_tls": False}
    made = await a.post(
        "/api/v1/integrations", json={"app": "email", "name": "mail", "values": values}
    )
    assert made.status_code == 201, made.text  # JSON numbers and booleans are of their kind
    patched = await a.patch(
        f"/api/v1/integrations/{made.json()['id']}", json={"config": {"timeout_s": "soon"}}
    )
    assert patched.status_code == 422, patched.text
    assert "positive number" in details(patched)["timeout_s"]
    apps = (await a.get("/api/v1/apps")).json()
    email = next(x for x in apps["items"] if x["key"] == "email")
    kinds = {f["key"]: f["kind"] for f in email["credential_fields"]}
    assert (kinds["port"], kinds["verify_tls"], kinds["host"]) == ("port", "boolean", "text")
