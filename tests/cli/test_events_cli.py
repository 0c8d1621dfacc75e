"""``calflow events``, ``calflow webhooks`` and ``calflow serve`` as real subprocesses.

The inbox is seeded in-process (the normalizers and ``Inbox.publish``, as the receiver,
the actions and the replay do) in a home of its own; the CLI then reads it.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from calflow.db.engine import reset_engines
from calflow.events.inbox import Inbox
from calflow.events.normalize import normalize
from calflow.integrations import IntegrationStore
from calflow.settings import Settings
from db_fixtures import temporary_database
from e2e.serve_process import CalflowHome

from .conftest import SECRET, Home, Result, run_calflow, run_many

pytestmark = pytest.mark.slow

CAL_ID = "int_cli_cal"
SC_ID = "int_cli_sc"
NOW = datetime.now(UTC)
OLD = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
"""Long before the recent events (the --since cut-offs sit between them)."""
EVENT_KEYS = {
    "id", "dedupe_key", "provider", "kind", "original_type", "booking_uid", "source",
    "integration_id", "received_at", "deliveries", "duplicates", "dispatched", "event",
}  # fmt: skip
TABLE_COLUMNS = ["id", "kind", "provider", "booking", "source", "deliveries", "received"]


def cal_body(trigger: str, uid: str, **payload: Any) -> dict[str, Any]:
    return {
        "triggerEvent": trigger,
        "createdAt": "2026-01-10T08:00:00.000Z",
        "payload": {
            "uid": uid,
            "type": "30min",
            "title": "30 Minute Meeting between Demo Host and Ann Lee",
            "startTime": "2030-01-07T09:00:00Z",
            "endTime": "2030-01-07T09:30:00Z",
            "organizer": {"name": "Demo Host", "email": "demo@example.com", "timeZone": "UTC"},
            "attendees": [{"name": "Ann Lee", "email": "ann@example.com", "timeZone": "UTC"}],
            "responses": {"email": {"value": "ann@example.com"},
                          "attendeePhoneNumber": {"value": "+33 6 12 34 56 78"}},
            "eventTypeId": 101,
            "status": "ACCEPTED",
            **payload,
        },
    }  # fmt: skip


def savvycal_body(type_: str, event_id: str, state: str) -> dict[str, Any]:
    return {
        "type": type_,
        "id": f"payload_{type_}",
        "version": "2020-11-18",
        "occurred_at": "2026-01-10T08:00:00Z",
        "payload": {
            "id": event_id,
            "state": state,
            "summary": "Intro",
            "start_at": "2030-01-08T14:00:00Z",
            "end_at": "2030-01-08T14:30:00Z",
            "link": {"id": "link_1", "slug": "30min", "name": "30 Minute Meeting"},
            "attendees": [
                {"email": "sam@example.com", "display_name": "Sam Host", "is_organizer": True},
                {"email": "bo@example.com", "display_name": "Bo Li", "is_organizer": False,
                 "phone_number": "+1 415 555 0100"},
            ],
        },
    }  # fmt: skip


SEED: list[tuple[str, dict[str, Any], str, datetime]] = [
    # (provider, body, source, received at), in the order they arrive
    ("cal_com", cal_body("BOOKING_CREATED", "cal-1"), "webhook", OLD),
    ("cal_com", cal_body("BOOKING_CANCELLED", "cal-1", status="CANCELLED",
                         cancellationReason="sick"), "webhook", OLD + timedelta(days=2)),
    ("savvycal", savvycal_body("event.created", "event_A", "confirmed"), "webhook",
     NOW - timedelta(hours=2)),
    ("cal_com", cal_body("BOOKING_CREATED", "cal-2"), "action", NOW - timedelta(hours=1)),
    ("cal_com", cal_body("BOOKING_CREATED", "cal-2"), "webhook", NOW - timedelta(minutes=59)),
    ("cal_com", cal_body("BOOKING_CREATED", "cal-2"), "replay", NOW - timedelta(minutes=58)),
    ("savvycal", savvycal_body("event.canceled", "event_A", "canceled"), "webhook",
     NOW - timedelta(minutes=30)),
]  # fmt: skip
"""Five booking changes, seven deliveries: ``cal-2 created`` came three times."""
NEWEST_FIRST = [
    ("savvycal", "event_A", "cancelled"),
    ("cal_com", "cal-2", "created"),
    ("savvycal", "event_A", "created"),
    ("cal_com", "cal-1", "cancelled"),
    ("cal_com", "cal-1", "created"),
]


def seed(settings: Settings) -> None:
    store = IntegrationStore.default(settings)
    inbox = Inbox(store.engine, store.workspace_id)
    for provider, body, source, received_at in SEED:
        integration = CAL_ID if provider == "cal_com" else SC_ID
        event = normalize(
            provider, body, source=source, integration_id=integration, received_at=received_at
        )
        inbox.publish(event, reference=body.get("id"))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A home whose inbox holds ``SEED`` (SQLite)."""
    path = tmp_path_factory.mktemp("events-home")
    try:
        seed(Settings(home=path, database_url=None, secret_keys=None))
    finally:
        reset_engines()
    yield path


def keys(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(r["provider"], r["booking_uid"], r["kind"]) for r in rows]


def clear_error(result: Result, *fragments: str, code: int = 2) -> None:
    """A failed run: the exit code, a message with ``fragments``, nothing on stdout."""
    assert result.code == code, str(result)
    assert result.stdout.strip() == "", str(result)
    for fragment in fragments:
        assert fragment in result.err, str(result)


# --- events list ---------------------------------------------------------------------


def test_events_list_json_is_every_event_newest_first(seeded: Path) -> None:
    got = run_calflow(seeded, "events", "list", "--json")
    assert got.code == 0, str(got)
    rows = got.json
    assert keys(rows) == NEWEST_FIRST
    for row in rows:
        assert set(row) >= EVENT_KEYS, row
        assert row["id"].startswith("evt_")
        assert row["duplicates"] == row["deliveries"] - 1
        assert row["event"]["booking_uid"] == row["booking_uid"]
        assert row["event"]["kind"] == row["kind"]
    received = [datetime.fromisoformat(r["received_at"]) for r in rows]
    assert received == sorted(received, reverse=True)
    by_key = {(r["booking_uid"], r["kind"]): r for r in rows}
    twice_more = by_key[("cal-2", "created")]
    assert (twice_more["source"], twice_more["deliveries"], twice_more["duplicates"]) == (
        "action", 3, 2,
    )  # fmt: skip
    assert twice_more["integration_id"] == CAL_ID
    assert twice_more["original_type"] == "BOOKING_CREATED"
    cancelled = by_key[("cal-1", "cancelled")]["event"]
    assert cancelled["reason"] == "sick"
    assert [a["phone"] for a in cancelled["attendees"]] == ["+33612345678"]
    savvycal = by_key[("event_A", "created")]["event"]
    assert [(a["email"], a["phone"]) for a in savvycal["attendees"]] == [
        ("bo@example.com", "+14155550100")
    ]
    assert savvycal["organizer"]["email"] == "sam@example.com"


FILTERS: list[tuple[tuple[str, ...], list[tuple[str, str, str]]]] = [
    (("--kind", "created"), [k for k in NEWEST_FIRST if k[2] == "created"]),
    (("--kind", "cancelled", "--provider", "savvycal"), [NEWEST_FIRST[0]]),
    (("--provider", "cal_com"), [k for k in NEWEST_FIRST if k[0] == "cal_com"]),
    (("--booking", "cal-1"), NEWEST_FIRST[3:]),
    (("--booking", "no-such-booking"), []),
    (("--since", "2026-01-11"), NEWEST_FIRST[:4]),
    (("--since", "2026-01-12T09:00:00Z"), NEWEST_FIRST[:4]),  # at: included
    (("--since", "2026-01-12T09:00:01+00:00"), NEWEST_FIRST[:3]),
    (("--since", "3h"), NEWEST_FIRST[:3]),
    (("--limit", "2"), NEWEST_FIRST[:2]),
    (("--kind", "created", "--provider", "cal_com", "--since", "1d"), [NEWEST_FIRST[1]]),
    (("--limit", "1", "--provider", "cal_com", "--since", "45m"), []),
]


def test_events_list_filters(seeded: Path) -> None:
    results = run_many(seeded, *[("events", "list", *args, "--json") for args, _ in FILTERS])
    for (args, expected), got in zip(FILTERS, results, strict=True):
        assert got.code == 0, str(got)
        assert keys(got.json) == expected, args


def test_events_list_table(seeded: Path) -> None:
    full, empty = run_many(
        seeded, ("events", "list"), ("events", "list", "--booking", "no-such-booking")
    )
    assert full.code == empty.code == 0, f"{full}\n{empty}"
    lines = full.stdout.splitlines()
    assert lines[0].strip() == "events"
    header = next(line for line in lines if "kind" in line)
    positions = [header.index(column) for column in TABLE_COLUMNS]
    assert positions == sorted(positions)
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines if "evt_" in line]
    assert [(r[2], r[3], r[1]) for r in rows] == NEWEST_FIRST  # provider, booking, kind
    assert all(r[0].startswith("evt_") for r in rows)
    cal_2 = next(r for r in rows if r[3] == "cal-2")
    assert cal_2[4:6] == ["action", "3"]
    assert "evt_" not in empty.stdout
    assert all(column in empty.stdout for column in TABLE_COLUMNS)


def test_events_list_refuses_a_bad_since(seeded: Path) -> None:
    got = run_calflow(seeded, "events", "list", "--since", "yesterday")
    clear_error(got, "--since 'yesterday' is not a date or time", "30d")


# --- events show ---------------------------------------------------------------------


def test_events_show_lists_every_delivery_and_its_source(seeded: Path) -> None:
    listed = run_calflow(seeded, "events", "list", "--booking", "cal-2", "--json")
    (row,) = listed.json
    as_json, as_text = run_many(
        seeded, ("events", "show", row["id"], "--json"), ("events", "show", row["id"])
    )
    assert as_json.code == as_text.code == 0, f"{as_json}\n{as_text}"
    shown = as_json.json
    assert json.loads(as_text.stdout) == shown  # the same data, pretty-printed
    assert shown["id"] == row["id"]
    assert (shown["kind"], shown["booking_uid"], shown["duplicates"]) == ("created", "cal-2", 2)
    assert [(d["source"], d["duplicate"], d["integration_id"]) for d in shown["deliveries"]] == [
        ("action", False, CAL_ID),
        ("webhook", True, CAL_ID),
        ("replay", True, CAL_ID),
    ]
    assert all(datetime.fromisoformat(d["received_at"]) for d in shown["deliveries"])
    assert shown["event"]["attendees"][0]["phone"] == "+33612345678"
    assert shown["raw"]["triggerEvent"] == "BOOKING_CREATED"  # the payload as it came

    (savvycal,) = run_calflow(
        seeded, "events", "list", "--booking", "event_A", "--kind", "cancelled", "--json"
    ).json
    (delivery,) = run_calflow(seeded, "events", "show", savvycal["id"], "--json").json["deliveries"]
    assert (delivery["source"], delivery["reference"]) == ("webhook", "payload_event.canceled")


def test_events_show_of_an_unknown_id_is_a_clear_error(seeded: Path) -> None:
    as_json, as_text = run_many(
        seeded,
        ("events", "show", "evt_00000000000000000000", "--json"),
        ("events", "show", "nope"),
    )
    clear_error(as_json, "NOT_FOUND", "no event 'evt_00000000000000000000'")
    clear_error(as_text, "no event 'nope'")


def test_events_without_a_subcommand_shows_help(tmp_path: Path) -> None:
    got = run_calflow(tmp_path, "events")
    assert "list" in got.stdout + got.stderr and "show" in got.stdout + got.stderr


# --- the same on PostgreSQL, and a known problem ---------------------------------------


@pytest.fixture(scope="module")
def pg_seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CalflowHome]:
    with temporary_database() as url:
        home = CalflowHome(tmp_path_factory.mktemp("events-pg-home"), url)
        seed(home.settings())
        reset_engines()
        yield home


@pytest.mark.postgres
def test_events_list_and_show_on_postgresql(pg_seeded: CalflowHome) -> None:
    rows = pg_seeded.json("events", "list")
    assert keys(rows) == NEWEST_FIRST
    assert keys(pg_seeded.json("events", "list", "--kind", "created", "--since", "3h")) == [
        NEWEST_FIRST[1],
        NEWEST_FIRST[2],
    ]
    cal_2 = next(r for r in rows if r["booking_uid"] == "cal-2")
    shown = pg_seeded.json("events", "show", cal_2["id"])
    assert [d["source"] for d in shown["deliveries"]] == ["action", "webhook", "replay"]


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_events_list_refuses_a_negative_limit(
    database: str, seeded: Path, request: pytest.FixtureRequest
) -> None:
    if database == "sqlite":
        got = run_calflow(seeded, "events", "list", "--limit", "-1", "--json")
    else:
        got = request.getfixturevalue("pg_seeded").run("events", "list", "--limit", "-1")
    assert got.code == 2, str(got)
    assert "--limit" in got.err


# --- webhooks register ---------------------------------------------------------------


@pytest.fixture
def other_apps_home(fresh_home: Home) -> Home:
    """``fresh_home`` (``main``: Cal.com at the sandbox) plus ``legacy``, an integration
    of an app without webhooks calflow can receive."""
    try:
        IntegrationStore.default(Settings(home=fresh_home.path)).add(
            "zoom", "legacy", {}, {"api_key": "zoom_key"}
        )
    finally:
        reset_engines()
    return fresh_home


def test_webhooks_register_refuses_what_it_cannot_do(other_apps_home: Home) -> None:
    url = "http://127.0.0.1:9"
    unknown, wrong_app, unsupported, unsupported_name, no_url = other_apps_home.run_many(
        ("webhooks", "register", "cal_com", "-i", "nope", "--url", url),
        ("webhooks", "register", "savvycal", "-i", "main", "--url", url, "--json"),
        ("webhooks", "register", "zoom", "-i", "legacy", "--url", url),
        ("webhooks", "register", "zoom", "-i", "main", "--url", url),
        ("webhooks", "register", "cal_com", "-i", "main"),
    )
    clear_error(unknown, "NOT_FOUND", "no integration named or with id 'nope'")
    clear_error(wrong_app, "integration 'main' is a cal_com integration")
    clear_error(unsupported, "'zoom' has no webhooks calflow can receive", "cal_com, savvycal")
    clear_error(unsupported_name, "integration 'main' is a cal_com integration")
    clear_error(no_url, "--url")
    stored = IntegrationStore.default(Settings(home=other_apps_home.path)).get("main")
    reset_engines()
    assert stored.value("webhook_secret") is None
    hooks = other_apps_home.sandbox.state()["webhooks"]
    assert not [h for h in hooks if h["subscriberUrl"].startswith(url)]


def test_webhooks_register_refuses_a_url_calflow_cannot_use(fresh_home: Home) -> None:
    not_a_url, refused = fresh_home.run_many(
        ("webhooks", "register", "cal_com", "-i", "main", "--url", "not-a-url"),
        # A URI, but not one calflow lets a provider deliver to: refused before asking it.
        ("webhooks", "register", "cal_com", "-i", "main", "--url", "ftp://calflow.example"),
    )
    clear_error(not_a_url, "subscriberUrl", "not-a-url/hooks/", "is not a 'uri'")
    clear_error(refused, "subscriberUrl", "only http and https URLs are allowed")
    stored = IntegrationStore.default(Settings(home=fresh_home.path)).get("main")
    reset_engines()
    assert stored.value("webhook_secret") is None
    hooks = fresh_home.sandbox.state()["webhooks"]
    assert not [h for h in hooks if "calflow.example" in h["subscriberUrl"]]


def test_webhooks_register_prints_the_hook_url_not_the_secret(fresh_home: Home) -> None:
    base = "http://127.0.0.1:9/calflow/"  # nothing listens: the provider only stores it
    got = fresh_home.run("webhooks", "register", "cal_com", "-i", "main", "--url", base)
    store = IntegrationStore.default(Settings(home=fresh_home.path))
    try:
        integration = store.get("main")
        hook_url = f"http://127.0.0.1:9/calflow/hooks/{integration.id}"
        (hook,) = [
            h for h in fresh_home.sandbox.state()["webhooks"] if h["subscriberUrl"] == hook_url
        ]
        try:
            assert got.code == 0, str(got)
            assert " ".join(got.stdout.split()) == (
                f"registered {hook_url} at cal_com (secret stored encrypted)"
            )
            secret = integration.value("webhook_secret")
            assert secret == hook["secret"]
            assert secret not in got.stdout + got.stderr
            assert SECRET not in got.stdout + got.stderr
        finally:  # the sandbox is shared: leave no subscriber behind
            httpx.delete(
                f"{fresh_home.sandbox.calcom}/v2/webhooks/{hook['id']}",
                headers={"Authorization": f"Bearer {SECRET}"},
                timeout=30,
            ).raise_for_status()
    finally:
        reset_engines()


# --- serve -----------------------------------------------------------------------------


def test_serve_help(tmp_path: Path) -> None:
    got = run_calflow(tmp_path, "serve", "--help")
    assert got.code == 0, str(got)
    text = " ".join(got.stdout.split())
    assert "/hooks/" in text
    for option in ("--host", "--port", "127.0.0.1", "8000"):
        assert option in text, option


def test_serve_on_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        got = run_calflow(tmp_path, "serve", "--port", str(port), "--no-worker", timeout=60)
    assert got.code != 0, str(got)
    assert "address already in use" in got.err, str(got)


def test_serve_refuses_a_port_out_of_range(tmp_path: Path) -> None:
    got = run_calflow(tmp_path, "serve", "--port", "99999", "--no-worker", timeout=60)
    assert got.code == 2, str(got)
    assert "--port" in got.err
