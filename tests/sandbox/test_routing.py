"""Version-header routing, authentication and envelope shapes."""

from __future__ import annotations

import pytest

from ._support import BOOKINGS, SLOTS, Sandbox


async def test_success_and_error_envelopes(sb: Sandbox) -> None:
    ok = await sb.api.get("/v2/me")
    assert ok.status_code == 200
    assert ok.json()["status"] == "success"
    assert ok.json()["data"]["username"] == "demo"

    missing = await sb.api.get("/v2/bookings/nope", headers=BOOKINGS)
    assert missing.status_code == 404
    body = missing.json()
    assert set(body) == {"status", "timestamp", "path", "error"}
    assert body["status"] == "error"
    assert body["path"] == "/v2/bookings/nope"
    assert body["error"]["code"] == "NotFoundException"
    assert body["error"]["message"] == "Booking with uid=nope was not found in the database"
    assert body["error"]["details"]["statusCode"] == 404


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "No authentication method provided"),
        ("Bearer cal_live_wrong", "Your api key is not valid"),
    ],
)
async def test_missing_or_bad_key_is_401(
    sb: Sandbox, authorization: str | None, message: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    sb.api.headers.pop("Authorization")
    response = await sb.api.get("/v2/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UnauthorizedException"
    assert message in response.json()["error"]["message"]


async def test_list_without_token_is_403(sb: Sandbox) -> None:
    sb.api.headers.pop("Authorization")
    response = await sb.api.get("/v2/bookings", headers=BOOKINGS)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "ForbiddenException"


async def test_create_without_version_is_legacy_400(sb: Sandbox) -> None:
    start = await sb.first_slot()
    response = await sb.api.post(
        "/v2/bookings",
        json={"start": start, "eventTypeId": 101, "attendee": {"name": "A", "timeZone": "UTC"}},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "BadRequestException"
    assert error["message"] == "Bad Request Exception"
    assert {e["property"] for e in error["details"]["errors"]} >= {"timeZone", "language"}
    assert (await sb.state())["bookings"] == []


async def test_legacy_get_and_list_answer_legacy_shapes(sb: Sandbox) -> None:
    created = (await sb.book(await sb.first_slot())).json()["data"]
    one = await sb.api.get(f"/v2/bookings/{created['uid']}")
    assert one.status_code == 200
    assert one.json()["data"]["startTime"] == created["start"]
    listed = await sb.api.get("/v2/bookings")
    assert listed.json()["data"]["bookings"][0]["uid"] == created["uid"]


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/v2/slots", BOOKINGS),
        ("GET", "/v2/slots", {}),
        ("GET", "/v2/event-types", BOOKINGS),
        ("GET", "/v2/event-types/101", BOOKINGS),
        ("POST", "/v2/bookings/abc/guests", SLOTS),
        ("POST", "/v2/bookings/abc/guests", {}),
        ("POST", "/v2/bookings/abc/reschedule", {}),
        ("POST", "/v2/bookings/abc/mark-absent", {}),
        ("POST", "/v2/bookings", SLOTS),
    ],
)
async def test_wrong_version_routes_to_404(
    sb: Sandbox, method: str, path: str, headers: dict[str, str]
) -> None:
    response = await sb.api.request(method, path, headers=headers, params={"start": "2050-01-01"})
    assert response.status_code == 404
    assert response.json()["error"]["message"].startswith(f"Cannot {method} {path}")


async def test_version_neutral_routes(sb: Sandbox) -> None:
    for headers in ({}, BOOKINGS, SLOTS):
        assert (await sb.api.get("/v2/me", headers=headers)).status_code == 200
        assert (await sb.api.get("/v2/webhooks", headers=headers)).status_code == 200


async def test_unknown_route_is_nest_404(sb: Sandbox) -> None:
    response = await sb.api.get("/v2/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Cannot GET /v2/nothing-here"
