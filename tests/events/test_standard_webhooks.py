"""Standard Webhooks: signed and verified by the ``standardwebhooks`` library, behind
calflow's gates (a secret that base64-decodes; a ``webhook-timestamp`` of ASCII digits).

Timestamps are explicit, taken relative to the clock of the test run (the library's
tolerance is measured against its own clock), so nothing depends on the date.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from calflow.db.engine import reset_engines
from calflow.errors import ValidationError
from calflow.events.inbox import Inbox
from calflow.flowapp import default_registry
from calflow.integrations import IntegrationStore
from calflow.server.app import create_app
from calflow.server.signatures import (
    StandardSecretError,
    check_webhook_settings,
    standard_headers,
    standard_refusal,
    standard_webhook,
)
from calflow.settings import Settings

from .test_receiver import CAL_BODY

KEY = b"calflow-standard-webhooks-test-key-32b"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
UNPADDED = SECRET.rstrip("=")
OTHER = "whsec_" + base64.b64encode(b"the-next-key-after-rotation-000").decode()
BODY = json.dumps(CAL_BODY).encode()
BAD_SECRETS = [
    "whsec_not base64!",  # the library would drop the space and the "!" and decode the rest
    "whsec_c2VjcmV0-a2V5_",  # the URL-safe alphabet: the library would drop "-" and "_"
    "whsec_",
    "whsec_a",  # one character past a multiple of four never decodes
    "whsec_ab=c",  # padding inside
]
HOSTILE_TIMESTAMPS = {
    "arabic-indic digits": None,  # filled in from "now" below
    "negative": "-1",
    "float": "{now}.5",
    "exponent": "1.7e9",
    "underscores": "1_{now_tail}",
    "leading zero": "0{now}",
    "nan": "nan",
    "infinity": "inf",
    "thousands of digits": "9" * 5000,
    "too many digits": "1" * 13,
    # str.isdigit() is true and int() raises: calflow's own check answered 500 to these
    "superscript digits": "\u00b9\u00b2\u00b3",
}
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def now() -> int:
    return int(time.time())


def headers_at(ts: int | str, secret: str = SECRET, msg_id: str = "msg_1") -> dict[str, str]:
    """Headers signed by the library itself over ``msg_id.ts.body``."""
    signed_ts = int(ts)
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(signed_ts, UTC), BODY)
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def hostile(name: str, pattern: str | None) -> str:
    n = str(now())
    if pattern is None:
        return n.translate(ARABIC_INDIC)
    return pattern.format(now=n, now_tail=n[1:])


# --------------------------------------------------------------------- the wrapper


def test_round_trips_with_the_library() -> None:
    signed = standard_headers(SECRET, "msg_round", BODY)
    assert Webhook(SECRET).verify(BODY, signed, json_parse=False) is None
    assert standard_refusal(SECRET, BODY, headers_at(now())) is None
    when = datetime.fromtimestamp(1_900_000_000, UTC)  # an explicit stamp
    fixed = standard_headers(SECRET, "msg_fixed", BODY, when)
    assert fixed["webhook-timestamp"] == "1900000000"
    assert fixed["webhook-signature"] == Webhook(SECRET).sign("msg_fixed", when, BODY)


def test_an_unpadded_secret_is_padded_as_the_library_does() -> None:
    assert UNPADDED != SECRET  # the test key's base64 has padding to drop
    signed = standard_headers(UNPADDED, "msg_unpadded", BODY)
    Webhook(SECRET).verify(BODY, signed, json_parse=False)
    assert standard_refusal(UNPADDED, BODY, headers_at(now())) is None
    settings = {"webhook_signature": "standard", "webhook_secret": UNPADDED}
    assert check_webhook_settings(settings) == []


@pytest.mark.parametrize("secret", BAD_SECRETS)
def test_a_secret_that_does_not_decode_is_refused_never_used_raw(secret: str) -> None:
    with pytest.raises(StandardSecretError) as caught:
        standard_webhook(secret)
    assert "whsec_<base64>" in caught.value.message
    problems = check_webhook_settings({"webhook_signature": "standard", "webhook_secret": secret})
    assert [p.path for p in problems] == ["webhook_secret"]
    assert "base64!" not in problems[0].message and "c2VjcmV0" not in problems[0].message
    # the provider scheme takes any secret: it is an HMAC key as given
    assert check_webhook_settings({"webhook_signature": "provider", "webhook_secret": secret}) == []
    app = default_registry().app("cal_com")
    with pytest.raises(ValidationError, match="webhook_secret"):
        app.fields_for_new(
            {"api_key": "k", "webhook_signature": "standard", "webhook_secret": secret}
        )


def test_rotation_two_signatures_either_key_verifies() -> None:
    ts = now()
    old, new = headers_at(ts, SECRET), headers_at(ts, OTHER)
    both = {**old, "webhook-signature": f"{old['webhook-signature']} {new['webhook-signature']}"}
    assert standard_refusal(SECRET, BODY, both) is None
    assert standard_refusal(OTHER, BODY, both) is None
    third = "whsec_" + base64.b64encode(b"a key nobody signed with!!").decode()
    assert (
        standard_refusal(third, BODY, both) == "no signature in webhook-signature matches the body"
    )


def test_expired_and_future_timestamps_are_refused_with_the_reason() -> None:
    assert "in the past" in str(standard_refusal(SECRET, BODY, headers_at(now() - 600)))
    assert "in the future" in str(standard_refusal(SECRET, BODY, headers_at(now() + 600)))
    assert standard_refusal(SECRET, BODY, headers_at(now() - 240)) is None  # within 5 min


def test_the_gate_is_needed_the_library_alone_takes_arabic_indic_digits() -> None:
    """Why calflow checks the header first: ``float()`` reads these digits, so the library
    accepts a header that is not the string the sender signed."""
    ts = now()
    arabic = {**headers_at(ts), "webhook-timestamp": str(ts).translate(ARABIC_INDIC)}
    Webhook(SECRET).verify(BODY, arabic, json_parse=False)  # accepted by the library
    reason = standard_refusal(SECRET, BODY, arabic)
    assert reason is not None and "ASCII digits" in reason


@pytest.mark.parametrize("name", sorted(HOSTILE_TIMESTAMPS))
def test_hostile_timestamps_get_a_reason_never_an_exception(name: str) -> None:
    ts = hostile(name, HOSTILE_TIMESTAMPS[name])
    signed = {**headers_at(now()), "webhook-timestamp": ts}
    reason = standard_refusal(SECRET, BODY, signed)
    assert reason is not None and "webhook-timestamp" in reason, reason


def test_missing_and_malformed_headers() -> None:
    good = headers_at(now())
    for name in good:
        reason = standard_refusal(SECRET, BODY, {k: v for k, v in good.items() if k != name})
        assert reason is not None and name in reason
    assert "webhook-id" in str(standard_refusal(SECRET, BODY, {**good, "webhook-id": "a b"}))
    long_sig = {**good, "webhook-signature": "v1,x " * 2000}
    assert "webhook-signature" in str(standard_refusal(SECRET, BODY, long_sig))


# --------------------------------------------------------------------- the receiver route


def _wire(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IntegrationStore]:
    """Standard-signing integrations on SQLite and on PostgreSQL: ``std`` (saved through
    the app's checks) and ``broken`` (a bad secret written straight to the store, as an
    older calflow could have)."""
    url = (
        f"sqlite:///{tmp_path / 'calflow.db'}"
        if request.param == "sqlite"
        else str(request.getfixturevalue("isolated_pg_url"))
    )
    s = IntegrationStore.default(Settings(home=tmp_path, database_url=url))
    app = default_registry().app("cal_com")
    values = {"api_key": "cal_live_std", "webhook_signature": "standard", "webhook_secret": SECRET}
    s.add("cal_com", "std", *app.fields_for_new(values))
    s.add("cal_com", "broken", {"webhook_signature": "standard"},
          {"api_key": "cal_live_b", "webhook_secret": "whsec_not base64!"})  # fmt: skip
    yield s
    reset_engines()


@pytest.fixture
async def client(store: IntegrationStore, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(store, Settings(home=tmp_path))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://calflow") as c:
        yield c


async def test_receiver_route_standard_deliveries(
    client: httpx.AsyncClient, store: IntegrationStore
) -> None:
    url = f"/hooks/{store.get('std').id}"
    inbox = Inbox(store.engine)

    async def post(headers: dict[str, str]) -> httpx.Response:
        # on the wire: Latin-1 where it fits (what Starlette decodes with), else UTF-8
        raw = {k: _wire(v) for k, v in headers.items()}
        return await client.post(url, content=BODY, headers=raw)

    # expired, hostile and unsigned deliveries: 401 with the reason, nothing stored
    refusals: list[tuple[str, dict[str, str]]] = [
        ("expired", headers_at(now() - 600)),
        ("unsigned", {}),
        ("bad id", {**headers_at(now()), "webhook-id": "x" * 300}),
    ]
    refusals += [
        (name, {**headers_at(now()), "webhook-timestamp": hostile(name, pattern)})
        for name, pattern in HOSTILE_TIMESTAMPS.items()
    ]
    for name, headers in refusals:
        resp = await post(headers)
        assert resp.status_code == 401, (name, resp.status_code, resp.text)
        error = resp.json()["error"]
        assert error["code"] == "BAD_SIGNATURE", (name, error)
        assert "webhook-" in error["message"] or "past" in error["message"], (name, error)
    assert inbox.count() == 0
    # a good delivery (two signatures, rotation) is stored once; its id dedupes a retry
    ts = now()
    rotated = {
        **headers_at(ts),
        "webhook-signature": f"{headers_at(ts, OTHER)['webhook-signature']} "
        f"{headers_at(ts)['webhook-signature']}",
    }
    first = await post(rotated)
    assert first.status_code == 200, first.text
    again = await post(headers_at(now(), msg_id="msg_1"))
    assert again.status_code == 200 and again.json()["duplicate"] is True, again.text
    assert inbox.count() == 1


async def test_receiver_route_a_bad_stored_secret_is_a_clear_4xx(
    client: httpx.AsyncClient, store: IntegrationStore, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="calflow.audit"):
        resp = await client.post(
            f"/hooks/{store.get('broken').id}", content=BODY, headers=headers_at(now())
        )
    assert resp.status_code == 401, resp.text
    error = resp.json()["error"]
    assert error["code"] == "BAD_SECRET"
    assert "whsec_<base64>" in error["message"] and "integrations update" in error["message"]
    assert "not base64!" not in resp.text
    assert any("BAD_SECRET" in r.getMessage() for r in caplog.records)
    assert Inbox(store.engine).count() == 0
