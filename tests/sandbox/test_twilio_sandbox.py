"""The Twilio Messages simulator: resources, errors, magic numbers, callbacks, faults."""

from __future__ import annotations

import base64
import email.utils
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from calflow.sandbox import SandboxConfig
from calflow.sandbox.twilio.callbacks import signature
from calflow.sandbox.twilio.segments import segment_count

from ._support import Sandbox, make_sandbox

SID = "AC" + "0" * 31 + "1"
TOKEN = "twilio-sandbox-token-1234"
FROM = "+15005550006"
MESSAGES = f"/twilio/2010-04-01/Accounts/{SID}/Messages.json"


def auth(user: str = SID, password: str = TOKEN) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


@pytest.fixture
async def tw() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(twilio_account_sid=SID, twilio_auth_token=TOKEN, twilio_slow_s=0.01)
    async for sandbox in make_sandbox(config):
        yield sandbox


async def send(sb: Sandbox, form: dict[str, str], **headers: str) -> httpx.Response:
    return await sb.root.post(MESSAGES, data=form, headers={**auth(), **headers})


async def state(sb: Sandbox) -> dict[str, Any]:
    response = await sb.root.get("/_sandbox/state", params={"flush": "true"})
    data: dict[str, Any] = response.json()["twilio"]
    return data


async def test_send_answers_201_with_the_message_resource(tw: Sandbox) -> None:
    response = await send(tw, {"To": "+14155552671", "From": FROM, "Body": "Hello"})
    assert response.status_code == 201
    msg = response.json()
    assert re.fullmatch(r"SM[0-9a-f]{32}", msg["sid"])
    assert msg["status"] == "queued"
    assert (msg["to"], msg["from"], msg["body"]) == ("+14155552671", FROM, "Hello")
    assert msg["num_segments"] == "1" and msg["num_media"] == "0"
    assert msg["account_sid"] == SID and msg["api_version"] == "2010-04-01"
    assert msg["uri"] == f"/2010-04-01/Accounts/{SID}/Messages/{msg['sid']}.json"
    assert msg["error_code"] is None and msg["direction"] == "outbound-api"
    assert email.utils.parsedate_to_datetime(msg["date_created"]).utcoffset() is not None
    assert msg["date_created"].endswith("+0000")
    fetched = await tw.root.get(f"/twilio{msg['uri']}", headers=auth())
    assert fetched.status_code == 200 and fetched.json()["sid"] == msg["sid"]
    recorded = await state(tw)
    assert [m["sid"] for m in recorded["messages"]] == [msg["sid"]]
    assert recorded["messages"][0]["status"] == "delivered"
    assert recorded["account_sid"] == SID and recorded["auth_token"] == TOKEN


async def test_messaging_service_send_is_accepted_without_from(tw: Sandbox) -> None:
    service = "MG" + "a" * 32
    response = await send(tw, {"To": "+14155552671", "MessagingServiceSid": service, "Body": "x"})
    assert response.status_code == 201
    assert response.json()["status"] == "accepted"
    assert response.json()["from"] is None
    assert response.json()["messaging_service_sid"] == service


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": FROM, "Body": "x"}, 21604),
        ({"To": "+14155552671", "Body": "x"}, 21603),
        ({"To": "+14155552671", "From": FROM}, 21602),
        ({"To": "+14155552671", "From": FROM, "Body": ""}, 21602),
        ({"To": "12345", "From": FROM, "Body": "x"}, 21211),
        ({"To": "+15558675310", "From": FROM, "Body": "x"}, 21211),
        ({"To": "+14155552671", "From": "+14155550123", "Body": "x"}, 21606),
        ({"To": "+14155552671", "From": "not a number!", "Body": "x"}, 21212),
        ({"To": "+14155552671", "MessagingServiceSid": "MG12", "Body": "x"}, 21701),
        ({"To": FROM, "From": FROM, "Body": "x"}, 21266),
        ({"To": "+14155552671", "From": FROM, "Body": "x" * 1601}, 21617),
        ({"To": "+15005550001", "From": FROM, "Body": "x"}, 21211),
        ({"To": "+15005550002", "From": FROM, "Body": "x"}, 21612),
        ({"To": "+15005550003", "From": FROM, "Body": "x"}, 21408),
        ({"To": "+15005550004", "From": FROM, "Body": "x"}, 21610),
        ({"To": "+15005550009", "From": FROM, "Body": "x"}, 21614),
    ],
)
async def test_bad_requests_answer_400_with_twilio_codes(
    tw: Sandbox, form: dict[str, str], code: int
) -> None:
    response = await send(tw, form)
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"code", "message", "more_info", "status"}
    assert (body["code"], body["status"]) == (code, 400)
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert (await state(tw))["messages"] == []


async def test_json_body_is_not_a_form(tw: Sandbox) -> None:
    response = await tw.root.post(MESSAGES, json={"To": "+14155552671"}, headers=auth())
    assert response.json()["code"] == 21604


@pytest.mark.parametrize(
    "headers",
    [{}, auth(password="wrong"), auth(user="AC" + "f" * 32), {"Authorization": "Bearer x"}],
)
async def test_bad_credentials_answer_401_20003(tw: Sandbox, headers: dict[str, str]) -> None:
    response = await tw.root.post(
        MESSAGES, data={"To": "+14155552671", "From": FROM, "Body": "x"}, headers=headers
    )
    assert response.status_code == 401
    assert response.json()["code"] == 20003
    assert response.headers["www-authenticate"] == 'Basic realm="Twilio API"'


async def test_other_account_in_the_url_is_refused(tw: Sandbox) -> None:
    other = "AC" + "f" * 32
    response = await tw.root.get(f"/twilio/2010-04-01/Accounts/{other}.json", headers=auth())
    assert response.status_code == 401


async def test_account_resource_and_unknown_routes(tw: Sandbox) -> None:
    account = await tw.root.get(f"/twilio/2010-04-01/Accounts/{SID}.json", headers=auth())
    assert account.status_code == 200
    assert account.json()["sid"] == SID and account.json()["status"] == "active"
    missing = await tw.root.get(
        f"/twilio/2010-04-01/Accounts/{SID}/Messages/SMx.json", headers=auth()
    )
    assert missing.status_code == 404 and missing.json()["code"] == 20404
    unknown = await tw.root.get("/twilio/2010-04-01/Nothing.json", headers=auth())
    assert unknown.status_code == 404 and unknown.json()["code"] == 20404
    wrong_method = await tw.root.delete(MESSAGES, headers=auth())
    assert wrong_method.status_code == 405 and wrong_method.json()["code"] == 20004


async def test_magic_numbers_for_rate_limit_and_server_error(tw: Sandbox) -> None:
    limited = await send(tw, {"To": "+15005550429", "From": FROM, "Body": "x"})
    assert limited.status_code == 429 and limited.json()["code"] == 20429
    failed = await send(tw, {"To": "+15005550500", "From": FROM, "Body": "x"})
    assert failed.status_code == 500 and failed.json()["code"] == 20500
    assert (await state(tw))["messages"] == []


async def test_slow_magic_number_stores_the_message_before_answering(tw: Sandbox) -> None:
    response = await send(tw, {"To": "+15005550504", "From": FROM, "Body": "late"})
    assert response.status_code == 201
    assert [m["body"] for m in (await state(tw))["messages"]] == ["late"]


async def test_list_messages_newest_first_with_filters(tw: Sandbox) -> None:
    for to in ("+14155552671", "+12025550143", "+14155552671"):
        await send(tw, {"To": to, "From": FROM, "Body": to})
    listed = await tw.root.get(MESSAGES, params={"To": "+14155552671"}, headers=auth())
    page = listed.json()
    assert [m["to"] for m in page["messages"]] == ["+14155552671"] * 2
    assert page["next_page_uri"] is None and page["page"] == 0
    one = await tw.root.get(MESSAGES, params={"PageSize": "1"}, headers=auth())
    assert [m["to"] for m in one.json()["messages"]] == ["+14155552671"]
    control = await tw.root.get("/_sandbox/twilio/messages", params={"to": "+12025550143"})
    assert [m["body"] for m in control.json()] == ["+12025550143"]


async def test_status_callbacks_are_signed_like_twilio(tw: Sandbox) -> None:
    url = "https://hooks.example.com/twilio/status?x=1"
    response = await send(
        tw, {"To": "+14155552671", "From": FROM, "Body": "hi", "StatusCallback": url}
    )
    sid = response.json()["sid"]
    recorded = await state(tw)
    assert [(c["message_sid"], c["message_status"]) for c in recorded["callbacks"]] == [
        (sid, "sent"),
        (sid, "delivered"),
    ]
    posted = [r for r in tw.hooks.requests if str(r.url) == url]
    assert len(posted) == 2
    for request in posted:
        params = dict(parse_qsl(request.content.decode()))
        assert params["MessageSid"] == sid and params["AccountSid"] == SID
        assert request.headers["x-twilio-signature"] == signature(TOKEN, url, params)
    assert [dict(parse_qsl(r.content.decode()))["MessageStatus"] for r in posted] == [
        "sent",
        "delivered",
    ]


def test_signature_matches_twilio_documented_example() -> None:
    # The example of Twilio's "Webhooks security" page.
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert signature("12345", url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("x" * 160, 1),
        ("x" * 161, 2),
        ("x" * 306, 2),
        ("x" * 307, 3),
        ("€" * 80, 1),
        ("€" * 81, 2),
        ("é" * 160, 1),
        ("ł" * 70, 1),
        ("ł" * 71, 2),
        ("😀" * 35, 1),
        ("😀" * 36, 2),
    ],
)
def test_segment_count(body: str, segments: int) -> None:
    assert segment_count(body) == segments


async def test_faults_answer_twilio_shaped_5xx_and_touch_nothing(tw: Sandbox) -> None:
    await tw.root.post("/_sandbox/faults", json={"fail_rate": 1.0})
    statuses = set()
    for _ in range(30):
        response = await send(tw, {"To": "+14155552671", "From": FROM, "Body": "x"})
        statuses.add(response.status_code)
        if response.status_code in (500, 503):
            assert response.json()["code"] in (20500, 20503)
    assert statuses == {500, 502, 503}
    await tw.root.post("/_sandbox/faults", json={"fail_rate": 0})
    assert (await state(tw))["messages"] == []


async def test_reset_forgets_messages(tw: Sandbox) -> None:
    await send(tw, {"To": "+14155552671", "From": FROM, "Body": "x"})
    await tw.root.post("/_sandbox/reset")
    assert (await state(tw))["messages"] == []


def test_credentials_are_generated_when_not_configured() -> None:
    config = SandboxConfig()
    assert re.fullmatch(r"AC[0-9a-f]{32}", config.resolved_twilio_account_sid)
    assert len(config.resolved_twilio_auth_token) == 32
