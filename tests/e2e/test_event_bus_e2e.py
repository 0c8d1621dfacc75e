"""The event bus end to end, every piece a real process: the sandbox (Cal.com and
SavvyCal, sending signed webhooks), ``calflow serve`` (uvicorn, with its worker) and
the ``calflow`` CLI (integrations add, webhooks register, actions run, replay, events).

One booking change is one event whatever brings it: calflow's own action, the
provider's webhook for it, and any number of replays of the history are deliveries of
that one event. Every test makes bookings of its own and looks only at their events,
so the tests share one sandbox, one home and one server per database (SQLite and
PostgreSQL).

Ordering without sleeping: ``ServeProcess.paused()`` freezes the server (SIGSTOP) while
an action runs, so the provider's webhook for the booking the action made waits in the
server's listen backlog and is handled after the action's own event was stored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from calflow.db.engine import reset_engines
from calflow.events.normalize import normalize
from cli.conftest import Result
from db_fixtures import temporary_database

from .sandbox_process import SandboxProcess, sandbox_process
from .serve_process import CalflowHome, ServeProcess, poll, serve_process

pytestmark = pytest.mark.slow

API_KEY = "cal_live_bus_e2e_7c41d9a0b3"
SAVVYCAL_TOKEN = "pt_secret_bus_e2e_9d2f61c08a4e7b35"
PHONE = "+33 6 12 34 56 78"
PHONE_E164 = "+33612345678"
UK_PHONE = "+44 7911 123456"
UK_PHONE_E164 = "+447911123456"
CALCOM_BOOKINGS = "2024-08-13"
"""``cal-api-version`` of Cal.com's bookings endpoints."""


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def iso_z(value: str) -> str:
    """An instant as the normalized events write it (``2030-01-07T09:00:00Z``)."""
    return at(value).astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Bus:
    """A sandbox, a home with the integrations ``main`` (Cal.com) and ``sc`` (SavvyCal)
    whose webhooks point at a running ``calflow serve``."""

    database: str
    sandbox: SandboxProcess
    home: CalflowHome
    serve: ServeProcess
    ids: dict[str, str]
    """Integration id by app key."""
    registered: dict[str, Result]
    """The ``webhooks register`` run of each app."""
    link_id: str
    """The SavvyCal link ``30min``."""
    calcom_starts: list[str] = field(default_factory=list)
    savvycal_starts: list[str] = field(default_factory=list)

    def calcom_start(self) -> str:
        """An open Cal.com start (event type 101) nobody else in this module books."""
        return self.calcom_starts.pop(0)

    def savvycal_start(self) -> str:
        """An open start of the SavvyCal link ``30min`` nobody else in this module books."""
        return self.savvycal_starts.pop(0)

    def cli(self, *args: str) -> Result:
        return self.home.run(*args)

    def action(self, app: str, action: str, data: dict[str, Any]) -> dict[str, Any]:
        """``calflow actions run``: the booking (``data``) of a successful result."""
        integration = "main" if app == "cal_com" else "sc"
        got = self.cli(
            "actions", "run", app, action, "-i", integration, "--input", json.dumps(data), "--json"
        )
        assert got.code == 0, str(got)
        assert got.json["port"] == "success", str(got)
        booking: dict[str, Any] = got.json["data"]
        return booking

    def events(self, booking_uid: str) -> list[dict[str, Any]]:
        """The booking's events, newest first, as ``calflow events list --booking UID
        --json`` prints them (read in-process: the writers are the other processes)."""
        return self.home.inbox().list(booking_uid=booking_uid)

    def show(self, event_id: str) -> dict[str, Any]:
        """What ``calflow events show ID --json`` prints (read in-process)."""
        return self.home.inbox().get(event_id)

    def sources(self, event_id: str) -> list[str]:
        """The source of each delivery of an event, in arrival order."""
        return [d["source"] for d in self.show(event_id)["deliveries"]]

    def flush(self) -> None:
        """Wait until the sandbox finished every webhook delivery it started (each one
        ends when ``serve`` answered, i.e. after the event was stored)."""
        self.sandbox.state(flush=True)

    def settle(self) -> None:
        """Flush, then wait until the server's worker has taken every stored event: the
        server is idle (nothing to freeze mid-transaction)."""
        self.flush()
        inbox = self.home.inbox()
        poll(
            lambda: all(e["dispatched"] for e in inbox.list(limit=100_000)),
            what="the worker to dispatch every event",
        )

    def calcom_deliveries(self, uid: str) -> list[tuple[str, int | None]]:
        """(trigger, status) of every webhook the Cal.com sandbox sent about ``uid``."""
        return [
            (d["trigger"], d["status_code"])
            for d in self.sandbox.state()["deliveries"]
            if f'"uid":"{uid}"' in d["body"]
        ]

    def savvycal_deliveries(self, event_id: str) -> list[tuple[str, int | None]]:
        """(type, status) of every webhook attempt the SavvyCal sandbox made about it."""
        return [
            (d["type"], d["status_code"])
            for d in self.sandbox.savvycal_state()["deliveries"]
            if f'"id":"{event_id}"' in d["body"]
        ]


def essentials(event: dict[str, Any]) -> dict[str, Any]:
    """The fields of a normalized event every source must agree on."""
    return {
        **{k: event[k] for k in ("provider", "kind", "booking_uid", "previous_uid", "start",
                                 "end", "status", "title", "meeting_url", "reason")},
        "event_type": (event["event_type"] or {}).get("id"),
        "organizer": (event["organizer"] or {}).get("email"),
        "attendees": [(a["name"], a["email"], a["time_zone"], a["phone"])
                      for a in event["attendees"]],
    }  # fmt: skip


def web_calcom_booking(sb: SandboxProcess, start: str, **fields: Any) -> dict[str, Any]:
    """A booking made on Cal.com's booking page (the sandbox's ``_sandbox`` door): the
    provider sends its webhooks, calflow's actions are not involved."""
    body = {
        "eventTypeId": 101,
        "start": start,
        "attendee": {"name": "Grace Hopper", "email": "grace@example.org", "timeZone": "UTC"},
        **fields,
    }
    resp = httpx.post(f"{sb.root}/_sandbox/calcom/bookings", json=body, timeout=30)
    assert resp.status_code == 201, resp.text
    booking: dict[str, Any] = resp.json()["data"]
    return booking


def web_savvycal_booking(sb: SandboxProcess, link_id: str, start: str, **fields: Any) -> str:
    """An event booked on a SavvyCal scheduling page; returns its id."""
    end = (at(start) + timedelta(minutes=30)).isoformat()
    body = {
        "display_name": "Grace Hopper",
        "email": "grace@example.org",
        "start_at": start,
        "end_at": end,
        "time_zone": "Europe/London",
        **fields,
    }
    resp = httpx.post(f"{sb.root}/_sandbox/savvycal/links/{link_id}/events", json=body, timeout=30)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def open_calcom_starts(sb: SandboxProcess, event_type: int = 101, after: int = 1) -> list[str]:
    """Open starts of ``event_type`` over two weeks from ``after`` days ahead (a slot
    offered today may fall inside the minimum notice a moment later)."""
    first = datetime.now(UTC).date() + timedelta(days=after)
    resp = httpx.get(
        f"{sb.calcom}/v2/slots",
        params={"eventTypeId": event_type, "start": first.isoformat(),
                "end": (first + timedelta(days=13)).isoformat()},
        headers={"cal-api-version": "2024-09-04"},
        timeout=30,
    )  # fmt: skip
    resp.raise_for_status()
    return [s["start"] for day in resp.json()["data"].values() for s in day]


def open_savvycal_starts(sb: SandboxProcess, link_id: str) -> list[str]:
    """Open 30-minute starts of a SavvyCal link over two weeks from tomorrow."""
    first = datetime.now(UTC).date() + timedelta(days=1)
    resp = httpx.get(
        f"{sb.savvycal}/v1/links/{link_id}/slots",
        params={"from": first.isoformat(), "until": (first + timedelta(days=13)).isoformat()},
        headers={"Authorization": f"Bearer {SAVVYCAL_TOKEN}"},
        timeout=30,
    )
    resp.raise_for_status()
    return [s["start_at"] for s in resp.json() if s["duration"] == 30]


@pytest.fixture(scope="module")
def bus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bus]:
    """The bus on ``request.param``: ``sqlite`` or ``postgresql`` (tests choose with
    ``on_sqlite`` / ``on_both``; pytest builds each once and groups the tests)."""
    database: str = request.param
    with ExitStack() as stack:
        url = stack.enter_context(temporary_database()) if database == "postgresql" else None
        stack.callback(reset_engines)
        sb = stack.enter_context(
            sandbox_process(API_KEY, seed=4, savvycal_token=SAVVYCAL_TOKEN, savvycal_seed=4)
        )
        home = CalflowHome(tmp_path_factory.mktemp(f"bus-{database}"), url)
        cal_com = home.json(  # first alone: it creates the database
            "integrations", "add", "cal_com", "--name", "main",
            "--set", f"api_key={API_KEY}", "--set", f"base_url={sb.calcom}",
            forbidden=(API_KEY,),
        )  # fmt: skip
        with ThreadPoolExecutor(max_workers=2) as pool:
            adding = pool.submit(
                home.json, "integrations", "add", "savvycal", "--name", "sc",
                "--set", f"token={SAVVYCAL_TOKEN}", "--set", f"base_url={sb.savvycal}",
                forbidden=(SAVVYCAL_TOKEN,),
            )  # fmt: skip
            server = stack.enter_context(serve_process(home.env()))
            savvycal = adding.result()
            runs = {
                app: pool.submit(
                    home.run, "webhooks", "register", app, "-i", name, "--url", server.url, "--json"
                )
                for app, name in (("cal_com", "main"), ("savvycal", "sc"))
            }
            registered = {app: run.result() for app, run in runs.items()}
        link_id = next(x["id"] for x in sb.savvycal_state()["links"] if x["slug"] == "30min")
        yield Bus(
            database=database,
            sandbox=sb,
            home=home,
            serve=server,
            ids={"cal_com": cal_com["id"], "savvycal": savvycal["id"]},
            registered=registered,
            link_id=link_id,
            calcom_starts=open_calcom_starts(sb),
            savvycal_starts=open_savvycal_starts(sb, link_id),
        )


on_sqlite = pytest.mark.parametrize("bus", ["sqlite"], indirect=True)
on_both = pytest.mark.parametrize(
    "bus", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


# --- a. registering the webhooks ------------------------------------------------------


@on_both
def test_webhooks_register_subscribes_the_hook_url_with_a_secret_calflow_keeps(
    bus: Bus,
) -> None:
    got = bus.registered["cal_com"]
    assert got.code == 0, str(got)
    hook_url = bus.serve.hook_url(bus.ids["cal_com"])
    assert got.json["success"] is True
    assert got.json["hook_url"] == hook_url
    assert got.json["data"]["subscriberUrl"] == hook_url
    assert got.json["data"]["reused"] is False
    assert {"BOOKING_CREATED", "BOOKING_RESCHEDULED", "BOOKING_CANCELLED"} <= set(
        got.json["data"]["triggers"]
    )

    (hook,) = [h for h in bus.sandbox.state()["webhooks"] if h["subscriberUrl"] == hook_url]
    assert hook["active"] is True
    secret = hook["secret"]
    assert secret and len(secret) >= 32
    stored = bus.home.store().get("main")
    assert stored.value("webhook_secret") == secret  # the one the provider signs with
    assert stored.config["webhook_id"] == str(hook["id"])
    assert secret not in got.stdout + got.stderr

    shown = bus.home.json("integrations", "show", "main", forbidden=(secret, API_KEY))
    assert shown["secrets"]["webhook_secret"] == "********"

    # Registering again reuses the webhook and keeps the secret.
    again = bus.home.run(
        "webhooks", "register", "cal_com", "-i", "main", "--url", bus.serve.url, "--json",
        forbidden=(secret,),
    )  # fmt: skip
    assert again.code == 0, str(again)
    assert again.json["data"]["reused"] is True
    hooks = [h for h in bus.sandbox.state()["webhooks"] if h["subscriberUrl"] == hook_url]
    assert [h["secret"] for h in hooks] == [secret]
    assert bus.home.store().get("main").value("webhook_secret") == secret


@on_both
def test_webhooks_register_savvycal_keeps_the_secret_savvycal_made(bus: Bus) -> None:
    got = bus.registered["savvycal"]
    assert got.code == 0, str(got)
    hook_url = bus.serve.hook_url(bus.ids["savvycal"])
    assert got.json["hook_url"] == hook_url
    assert got.json["data"]["url"] == hook_url
    (hook,) = [h for h in bus.sandbox.savvycal_state()["webhooks"] if h["url"] == hook_url]
    assert hook["state"] == "active"
    stored = bus.home.store().get("sc")
    assert stored.value("webhook_secret") == hook["secret"]
    assert stored.config["webhook_id"] == hook["id"]
    assert hook["secret"] not in got.stdout + got.stderr


# --- b. a booking made outside calflow arrives by webhook --------------------------------


@on_both
def test_a_web_booking_arrives_through_the_signed_webhook(bus: Bus) -> None:
    start = bus.calcom_start()
    # The booking page's phone field, as typed: Cal.com's webhook carries it in responses.
    booking = web_calcom_booking(
        bus.sandbox, start, bookingFieldsResponses={"attendeePhoneNumber": UK_PHONE}
    )
    uid = booking["uid"]
    bus.flush()
    assert bus.calcom_deliveries(uid) == [("BOOKING_CREATED", 200)]

    (event,) = bus.home.json("events", "list", "--booking", uid)
    assert (event["kind"], event["source"], event["provider"]) == ("created", "webhook", "cal_com")
    assert event["original_type"] == "BOOKING_CREATED"
    assert event["integration_id"] == bus.ids["cal_com"]
    assert (event["deliveries"], event["duplicates"]) == (1, 0)
    data = event["event"]
    assert data["booking_uid"] == uid
    assert data["start"] == iso_z(start)
    assert [(a["email"], a["phone"]) for a in data["attendees"]] == [
        ("grace@example.org", UK_PHONE_E164)
    ]
    assert data["organizer"]["email"] == "demo@example.com"

    listed = bus.home.json("events", "list", "--kind", "created", "--provider", "cal_com")
    assert event["id"] in [e["id"] for e in listed]
    assert bus.sources(event["id"]) == ["webhook"]


@on_sqlite
def test_a_cancel_made_outside_calflow_arrives_by_webhook_only(bus: Bus) -> None:
    uid = web_calcom_booking(bus.sandbox, bus.calcom_start())["uid"]
    resp = httpx.post(
        f"{bus.sandbox.calcom}/v2/bookings/{uid}/cancel",
        json={"cancellationReason": "changed my mind"},
        headers={"Authorization": f"Bearer {API_KEY}", "cal-api-version": CALCOM_BOOKINGS},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    bus.flush()
    events = {e["kind"]: e for e in bus.events(uid)}
    assert sorted(events) == ["cancelled", "created"]
    cancelled = events["cancelled"]
    assert (cancelled["source"], cancelled["deliveries"]) == ("webhook", 1)
    assert cancelled["event"]["reason"] == "changed my mind"


# --- c. the cross-source test -----------------------------------------------------------


@on_both
def test_a_booking_made_by_calflow_is_one_event_through_action_webhook_and_replays(
    bus: Bus,
) -> None:
    start = bus.calcom_start()
    attendee = {"name": "Ada Lovelace", "email": "ada@example.com", "timeZone": "Europe/Paris",
                "phoneNumber": PHONE}  # fmt: skip
    bus.settle()
    with bus.serve.paused():
        booking = bus.action(
            "cal_com", "BookMeeting", {"eventTypeId": 101, "start": start, "attendee": attendee}
        )
        uid = booking["uid"]
        # The action published its event before the provider's webhook could be handled.
        (first,) = bus.events(uid)
        assert (first["kind"], first["source"], first["deliveries"]) == ("created", "action", 1)
        assert [a["phone"] for a in first["event"]["attendees"]] == [PHONE_E164]
    bus.flush()
    assert bus.calcom_deliveries(uid) == [("BOOKING_CREATED", 200)]

    (event,) = bus.events(uid)
    assert event["id"] == first["id"]
    assert (event["source"], event["deliveries"], event["duplicates"]) == ("action", 2, 1)
    assert [a["phone"] for a in event["event"]["attendees"]] == [PHONE_E164]
    shown = bus.show(event["id"])
    assert [(d["source"], d["duplicate"]) for d in shown["deliveries"]] == [
        ("action", False),
        ("webhook", True),
    ]
    assert {d["integration_id"] for d in shown["deliveries"]} == {bus.ids["cal_com"]}
    # What the action stored says what the provider's webhook says about the booking.
    (sent,) = [d for d in bus.sandbox.state()["deliveries"] if f'"uid":"{uid}"' in d["body"]]
    webhook = normalize("cal_com", json.loads(sent["body"])).to_dict(raw=False)
    assert essentials(event["event"]) == essentials(webhook)

    for _ in range(2):
        replayed = bus.cli("replay", "cal_com", "-i", "main", "--into", "calflow", "--json")
        assert replayed.code == 0, str(replayed)
        assert (replayed.json["status"], replayed.json["failed"]) == ("completed", 0)

    (after,) = bus.events(uid)
    assert (after["id"], after["kind"]) == (event["id"], "created")
    assert (after["deliveries"], after["duplicates"]) == (4, 3)
    shown = bus.home.json("events", "show", event["id"])
    assert shown["duplicates"] == 3
    assert [d["source"] for d in shown["deliveries"]] == ["action", "webhook", "replay", "replay"]
    replays = [d["reference"] for d in shown["deliveries"] if d["source"] == "replay"]
    assert replays[0] and replays[0] == replays[1]  # the same item id both times
    created = bus.home.json("events", "list", "--kind", "created", "--booking", uid)
    assert [e["id"] for e in created] == [event["id"]]


# --- d. reschedule and cancel -----------------------------------------------------------


@on_sqlite
def test_reschedule_and_cancel_by_calflow_are_one_event_each(bus: Bus) -> None:
    attendee = {"name": "Alan Turing", "email": "alan@example.com", "timeZone": "Europe/London",
                "phoneNumber": UK_PHONE}  # fmt: skip
    uid = bus.action(
        "cal_com", "BookMeeting",
        {"eventTypeId": 101, "start": bus.calcom_start(), "attendee": attendee},
    )["uid"]  # fmt: skip
    new_start = bus.calcom_start()
    moved = bus.action(
        "cal_com", "RescheduleBooking",
        {"bookingUid": uid, "start": new_start, "reschedulingReason": "a clash"},
    )  # fmt: skip
    new_uid = moved["uid"]
    assert new_uid != uid
    bus.flush()
    bus.action(
        "cal_com",
        "CancelBooking",
        {"bookingUid": new_uid, "cancellationReason": "no longer needed"},
    )
    bus.flush()
    assert bus.calcom_deliveries(new_uid) == [
        ("BOOKING_RESCHEDULED", 200),
        ("BOOKING_CANCELLED", 200),
    ]

    # Cal.com announces the move once, as BOOKING_RESCHEDULED of the new booking.
    assert [e["kind"] for e in bus.events(uid)] == ["created"]
    events = {e["kind"]: e for e in bus.events(new_uid)}
    assert sorted(events) == ["cancelled", "rescheduled"]
    for event in events.values():
        assert (event["deliveries"], event["duplicates"]) == (2, 1), event
        assert sorted(bus.sources(event["id"])) == ["action", "webhook"]
        assert [a["phone"] for a in event["event"]["attendees"]] == [UK_PHONE_E164]
    rescheduled = events["rescheduled"]["event"]
    assert rescheduled["previous_uid"] == uid
    assert rescheduled["start"] == iso_z(new_start)
    assert rescheduled["reason"] == "a clash"
    assert events["cancelled"]["event"]["reason"] == "no longer needed"


# --- e. SavvyCal ------------------------------------------------------------------------


@on_sqlite
def test_a_savvycal_web_booking_arrives_through_the_signed_webhook(bus: Bus) -> None:
    start = bus.savvycal_start()
    event_id = web_savvycal_booking(bus.sandbox, bus.link_id, start, phone_number=UK_PHONE)
    bus.flush()
    assert bus.savvycal_deliveries(event_id) == [("event.created", 200)]
    (event,) = bus.events(event_id)
    assert (event["kind"], event["source"], event["provider"]) == ("created", "webhook", "savvycal")
    assert event["original_type"] == "event.created"
    assert event["integration_id"] == bus.ids["savvycal"]
    assert event["event"]["start"] == iso_z(start)
    assert [(a["email"], a["phone"]) for a in event["event"]["attendees"]] == [
        ("grace@example.org", UK_PHONE_E164)
    ]
    (delivery,) = bus.show(event["id"])["deliveries"]
    assert delivery["source"] == "webhook"
    assert str(delivery["reference"]).startswith("payload_")  # SavvyCal's envelope id


@on_sqlite
def test_a_savvycal_booking_made_by_calflow_is_one_event_per_change(bus: Bus) -> None:
    start = bus.savvycal_start()
    book = {
        "link_id": bus.link_id, "start_at": start, "duration": 30,
        "display_name": "Ada Lovelace", "email": "ada@example.com", "time_zone": "Europe/Paris",
        "phone_number": "06 12 34 56 78", "default_phone_region": "FR",
    }  # fmt: skip
    bus.settle()
    with bus.serve.paused():
        event_id = bus.action("savvycal", "BookEvent", book)["id"]
        (first,) = bus.events(event_id)
        assert (first["kind"], first["source"], first["deliveries"]) == ("created", "action", 1)
        assert [a["phone"] for a in first["event"]["attendees"]] == [PHONE_E164]
    bus.flush()
    (created,) = bus.events(event_id)
    assert created["id"] == first["id"]
    assert (created["deliveries"], created["duplicates"]) == (2, 1)
    assert bus.sources(created["id"]) == ["action", "webhook"]

    # Moved on SavvyCal's side (the host's UI): only the webhook brings it.
    new_start = bus.savvycal_start()
    resp = httpx.post(
        f"{bus.sandbox.root}/_sandbox/savvycal/events/{event_id}/reschedule",
        json={"start_at": new_start, "end_at": (at(new_start) + timedelta(minutes=30)).isoformat()},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    bus.flush()
    bus.action("savvycal", "CancelEvent", {"event_id": event_id})
    bus.flush()
    assert bus.savvycal_deliveries(event_id) == [
        ("event.created", 200),
        ("event.rescheduled", 200),
        ("event.canceled", 200),
    ]
    for _ in range(2):
        replayed = bus.cli("replay", "savvycal", "-i", "sc", "--into", "calflow", "--json")
        assert replayed.code == 0, str(replayed)
        assert (replayed.json["status"], replayed.json["failed"]) == ("completed", 0)

    events = bus.events(event_id)
    assert Counter(e["kind"] for e in events) == {"created": 1, "rescheduled": 1, "cancelled": 1}
    by_kind = {e["kind"]: e for e in events}
    assert by_kind["created"]["id"] == created["id"]
    assert bus.sources(created["id"]) == ["action", "webhook"]
    assert bus.sources(by_kind["rescheduled"]["id"]) == ["webhook"]
    assert by_kind["rescheduled"]["event"]["start"] == iso_z(new_start)
    # The replays describe the event as it is now: cancelled.
    assert sorted(bus.sources(by_kind["cancelled"]["id"])) == [
        "action", "replay", "replay", "webhook"
    ]  # fmt: skip
    for event in events:
        assert [a["phone"] for a in event["event"]["attendees"]] == [PHONE_E164]


# --- f. forged deliveries ---------------------------------------------------------------


def _signed_delivery(bus: Bus, app: str) -> tuple[bytes, dict[str, str], str]:
    """A real delivery the sandbox sent to ``serve``: (body, headers, booking uid)."""
    if app == "cal_com":
        uid = web_calcom_booking(bus.sandbox, bus.calcom_start())["uid"]
        bus.flush()
        (sent,) = [d for d in bus.sandbox.state()["deliveries"] if f'"uid":"{uid}"' in d["body"]]
    else:
        uid = web_savvycal_booking(bus.sandbox, bus.link_id, bus.savvycal_start())
        bus.flush()
        (sent,) = [
            d for d in bus.sandbox.savvycal_state()["deliveries"] if f'"id":"{uid}"' in d["body"]
        ]
    assert sent["status_code"] == 200, sent
    return str(sent["body"]).encode(), dict(sent["headers"]), uid


@on_both
@pytest.mark.parametrize("app", ["cal_com", "savvycal"])
def test_a_tampered_delivery_is_refused_and_nothing_is_stored(bus: Bus, app: str) -> None:
    body, headers, uid = _signed_delivery(bus, app)
    header = "X-Cal-Signature-256" if app == "cal_com" else "x-savvycal-signature"
    path = f"/hooks/{bus.ids[app]}"
    (event,) = bus.events(uid)
    inbox = bus.home.inbox()
    before = inbox.count()

    forged_uid = f"forged-{uid}"
    other_body = body.replace(uid.encode(), forged_uid.encode())
    signature = headers[header]
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    wrong_key = hmac.new(b"not-the-secret", other_body, hashlib.sha256).hexdigest()
    attempts = {
        "body changed": (other_body, headers),
        "signature changed": (body, {**headers, header: flipped}),
        "signed with another key": (
            other_body,
            {**headers, header: wrong_key if app == "cal_com" else f"sha256={wrong_key}"},
        ),
        "unsigned": (other_body, {k: v for k, v in headers.items() if k != header}),
    }
    for what, (content, sent_headers) in attempts.items():
        resp = bus.serve.post(path, content, sent_headers)
        assert resp.status_code == 401, (what, resp.text)
        assert resp.json()["error"]["code"] == "BAD_SIGNATURE", what

    assert inbox.count() == before
    assert bus.events(forged_uid) == []
    assert [d["source"] for d in bus.show(event["id"])["deliveries"]] == ["webhook"]

    # The untouched delivery still goes through: it was only the tampering.
    resp = bus.serve.post(path, body, headers)
    assert resp.status_code == 200, resp.text
    assert (resp.json()["event"], resp.json()["duplicate"]) == (event["id"], True)


# --- known problem ------------------------------------------------------------------------


@on_sqlite
def test_a_delivery_right_after_registering_is_accepted(bus: Bus) -> None:
    integration = bus.home.store().add(
        "cal_com", "late", {"base_url": bus.sandbox.calcom}, {"api_key": API_KEY}
    )
    hook_url = bus.serve.hook_url(integration.id)
    try:
        # Anything reaching the hook before registration (a probe, an early retry)...
        early = bus.serve.post(f"/hooks/{integration.id}", b"{}", {"X-Cal-Signature-256": "0"})
        assert early.status_code == 401
        assert early.json()["error"]["code"] == "NO_SECRET"
        got = bus.cli("webhooks", "register", "cal_com", "-i", "late", "--url", bus.serve.url)
        assert got.code == 0, str(got)
        uid = web_calcom_booking(bus.sandbox, bus.calcom_start())["uid"]
        bus.flush()
        late = [
            d["status_code"]
            for d in bus.sandbox.state()["deliveries"]
            if d["url"] == hook_url and f'"uid":"{uid}"' in d["body"]
        ]
        assert late == [200]
    finally:
        for hook in bus.sandbox.state()["webhooks"]:
            if hook["subscriberUrl"] == hook_url:
                httpx.delete(
                    f"{bus.sandbox.calcom}/v2/webhooks/{hook['id']}",
                    headers={"Authorization": f"Bearer {API_KEY}"},
                    timeout=30,
                ).raise_for_status()


# --- d. seats -------------------------------------------------------------------------


@on_both
def test_each_seat_is_its_own_event_and_a_seat_cancel_by_calflow_is_that_seat_only(
    bus: Bus,
) -> None:
    start = open_calcom_starts(bus.sandbox, event_type=105, after=7)[0]  # 3 seats
    ann = web_calcom_booking(bus.sandbox, start, eventTypeId=105, attendee={
        "name": "Ann Lee", "email": "ann.seat@example.org", "timeZone": "UTC"})  # fmt: skip
    bob = bus.action("cal_com", "BookMeeting", {
        "eventTypeId": 105, "start": start,
        "attendee": {"name": "Bob Stone", "email": "bob.seat@example.org", "timeZone": "UTC",
                     "phoneNumber": PHONE},
    })  # fmt: skip
    uid = ann["uid"]
    assert bob["uid"] == uid  # the same seated booking
    bus.flush()
    created = [e for e in bus.events(uid) if e["kind"] == "created"]
    seats = sorted((e["event"]["seat"], [a["email"] for a in e["event"]["attendees"]])
                   for e in created)  # fmt: skip
    assert seats == [("ann.seat@example.org", ["ann.seat@example.org"]),
                     ("bob.seat@example.org", ["bob.seat@example.org"])]  # fmt: skip
    bobs = next(e for e in created if e["event"]["seat"] == "bob.seat@example.org")
    assert sorted(bus.sources(bobs["id"])) == ["action", "webhook"]  # one event, two doors
    assert bobs["event"]["attendees"][0]["phone"] == PHONE_E164

    seat_uid = ann["seatUid"]  # the seat Cal.com's answer names (the booking page's link)
    bus.action("cal_com", "CancelBooking", {"bookingUid": uid, "seatUid": seat_uid})
    bus.flush()
    events = bus.events(uid)
    (left,) = [e for e in events if e["kind"] == "attendee_cancelled"]
    assert left["event"]["seat"] == "ann.seat@example.org"
    assert sorted(bus.sources(left["id"])) == ["action", "webhook"]
    assert not [e for e in events if e["kind"] == "cancelled"]  # the booking goes on
