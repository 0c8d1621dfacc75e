"""The SavvyCal app through ``Runner`` and a real ``IntegrationStore``, against the sandbox
running as a separate process (a real HTTP server, like the real provider).

What the sandbox holds is read back independently of the app: through
``/_sandbox/state`` (user, links, OAuth client, event counts, the first 200 events) and
through the sandbox's API with raw HTTP requests.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import httpx
import pytest

from calflow.apps.savvycal.webhook import SIGNATURE_HEADER, verify_signature
from calflow.errors import AuthError, CalflowError, ValidationError
from calflow.flowapp import ActionResult
from calflow.flowapp.runner import Runner
from calflow.integrations import IntegrationStore

from .conftest import API_KEY, FAST_POLICY, SAVVYCAL_TOKEN, Receiver
from .sandbox_process import SandboxProcess, sandbox_process

pytestmark = pytest.mark.slow

APP = "savvycal"
PHONE = "+33 6 12 34 56 78"
PHONE_E164 = "+33612345678"
EVERYTHING = {"period": "all", "state": "all", "attendance": "any", "direction": "asc"}
"""SavvyCal's filters for a full backfill (its defaults are upcoming/confirmed/attending)."""


def parse_instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def api(
    sb: SandboxProcess, method: str, path: str, token: str = SAVVYCAL_TOKEN, **kwargs: Any
) -> httpx.Response:
    """A raw request to the sandbox's SavvyCal API (to check state without the app);
    ``token=""`` sends no ``Authorization``."""
    return httpx.request(
        method,
        f"{sb.savvycal}{path}",
        headers={"Authorization": f"Bearer {token}"} if token else None,
        timeout=30,
        **kwargs,
    )


def sandbox_event(sb: SandboxProcess, event_id: str) -> dict[str, Any]:
    resp = api(sb, "GET", f"/v1/events/{event_id}")
    resp.raise_for_status()
    out: dict[str, Any] = resp.json()
    return out


def link_ids(sb: SandboxProcess) -> dict[str, str]:
    """The seeded links' ids by slug (``30min``, ``discovery``, ``team-intro``, ``workshop``)."""
    return {link["slug"]: link["id"] for link in sb.savvycal_state()["links"]}


async def run(
    runner: Runner, action: str, data: dict[str, Any], integration: str = "sc"
) -> ActionResult:
    return await runner.run_action(APP, action, data, integration)


async def open_starts(runner: Runner, link_id: str, **context: Any) -> list[str]:
    """Start times the ``link_slots`` fetcher offers (UTC, ``…Z``), from tomorrow by
    default (a time offered today could fall inside the minimum notice a moment later)."""
    context = {"link_id": link_id, "from": next_week()[0].isoformat(), **context}
    options = await runner.fetch_options(APP, "link_slots", "sc", context)
    return [str(o.value) for o in options]


async def book(runner: Runner, link_id: str, *, duration: int = 30, **extra: Any) -> dict[str, Any]:
    """Book the first open start of a link with BookEvent; returns the event."""
    start = (await open_starts(runner, link_id))[0]
    result = await run(
        runner,
        "BookEvent",
        {
            "link_id": link_id,
            "start_at": start,
            "duration": duration,
            "display_name": "Ada Lovelace",
            "email": "ada@example.com",
            "time_zone": "Europe/Paris",
            **extra,
        },
    )
    assert result.port == "success", result
    assert isinstance(result.data, dict)
    return result.data


def organizer_email(event: dict[str, Any]) -> str:
    return str((event.get("organizer") or {}).get("email"))


def next_week() -> tuple[date, date]:
    """Tomorrow and six days later: always five weekdays, never today's minimum notice."""
    first = datetime.now(UTC).date() + timedelta(days=1)
    return first, first + timedelta(days=6)


class Traffic:
    """What the app sent: every ``GET /v1/events`` query with the cursors of each answer,
    and the JSON body of every request that had one."""

    def __init__(self) -> None:
        self.queries: list[dict[str, list[str]]] = []
        self.answers: list[dict[str, Any]] = []
        self.bodies: list[tuple[str, str, Any]] = []

    async def on_request(self, request: httpx.Request) -> None:
        if request.url.path.endswith("/v1/events"):
            self.queries.append(parse_qs(request.url.query.decode()))
        if request.content and request.headers.get("content-type") == "application/json":
            self.bodies.append((request.method, request.url.path, json.loads(request.content)))

    async def on_response(self, response: httpx.Response) -> None:
        if response.request.url.path.endswith("/v1/events"):
            await response.aread()
            self.answers.append(response.json()["metadata"])


@pytest.fixture
def traffic() -> Traffic:
    return Traffic()


@pytest.fixture
async def recording_runner(store: IntegrationStore, traffic: Traffic) -> AsyncIterator[Runner]:
    """A Runner on the real store whose HTTP traffic ``traffic`` records."""
    hooks: dict[str, list[Callable[..., Any]]] = {
        "request": [traffic.on_request],
        "response": [traffic.on_response],
    }
    async with (
        httpx.AsyncClient(timeout=30, event_hooks=hooks) as http,
        Runner(store=store, http=http, policy=FAST_POLICY) as runner,
    ):
        yield runner


# --- who am I, bad credentials ------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
async def test_get_me_with_any_form_of_the_base_url(
    runner: Runner, store: IntegrationStore, savvycal_sandbox: SandboxProcess, suffix: str
) -> None:
    store.add(
        APP, "me", {"base_url": savvycal_sandbox.savvycal + suffix}, {"token": SAVVYCAL_TOKEN}
    )
    result = await run(runner, "GetMe", {}, "me")
    assert result.success and result.port == "success", result
    user = savvycal_sandbox.savvycal_state()["user"]
    assert result.data["id"] == user["id"]
    assert result.data["email"] == "sam@example.com"
    assert result.data["time_zone"] == user["time_zone"]
    assert result.data["display_name"] == "Sam Rivera"


async def test_a_wrong_token_is_auth_error_with_savvycals_message(
    runner: Runner, store: IntegrationStore, savvycal_sandbox: SandboxProcess
) -> None:
    wrong = "pt_secret_not_the_right_one"
    store.add(APP, "bad", {"base_url": savvycal_sandbox.savvycal}, {"token": wrong})
    result = await run(runner, "GetMe", {}, "bad")
    assert not result.success
    assert result.port == "error"
    assert result.code == "AUTH_ERROR"
    assert result.message == "SavvyCal: Unauthenticated"
    assert result.data["status"] == 401
    assert wrong not in json.dumps(result.to_dict())

    listing = await run(runner, "ListEvents", {}, "bad")
    assert listing.code == "AUTH_ERROR"
    with pytest.raises(AuthError, match="Unauthenticated"):
        await runner.fetch_options(APP, "links", "bad")


# --- events: listing --------------------------------------------------------------------


async def everything(runner: Runner, **extra: Any) -> list[dict[str, Any]]:
    result = await run(runner, "ListEvents", {**EVERYTHING, "limit": 100000, **extra})
    assert result.port == "success", result
    events: list[dict[str, Any]] = result.data["events"]
    assert result.data["count"] == len(events)
    return events


async def test_list_events_backfill_follows_every_cursor(
    recording_runner: Runner,
    savvycal_integration: str,
    savvycal_sandbox: SandboxProcess,
    traffic: Traffic,
) -> None:
    events = await everything(recording_runner)
    state = savvycal_sandbox.savvycal_state()
    ids = [e["id"] for e in events]
    assert state["event_count"] > 200, "seed more events: a backfill must span three pages"
    assert len(ids) == state["event_count"]
    assert len(set(ids)) == len(ids)  # no page repeated
    assert Counter(e["state"] for e in events) == Counter(state["event_states"])
    # The state shows the first events in start order: the listing starts with them.
    assert ids[: len(state["events"])] == [e["id"] for e in state["events"]]
    starts = [parse_instant(e["start_at"]) for e in events]
    assert starts == sorted(starts)

    # Pages of 100, each asking for what comes after the previous page's cursor.
    assert len(traffic.queries) == math.ceil(len(ids) / 100) >= 3
    assert all(q["limit"] == ["100"] for q in traffic.queries)
    assert all(q["period"] == ["all"] and q["attendance"] == ["any"] for q in traffic.queries)
    assert "after" not in traffic.queries[0]
    for query, previous in zip(traffic.queries[1:], traffic.answers, strict=False):
        assert query["after"] == [previous["after"]]
    assert traffic.answers[-1]["after"] is None


async def test_list_events_stops_at_the_callers_limit(
    recording_runner: Runner, savvycal_integration: str, traffic: Traffic
) -> None:
    ids = [e["id"] for e in await everything(recording_runner)]

    traffic.queries.clear()
    some = await run(recording_runner, "ListEvents", {**EVERYTHING, "limit": 130})
    assert [e["id"] for e in some.data["events"]] == ids[:130]
    assert some.data["count"] == 130
    assert len(traffic.queries) == 2  # a second page, and no third

    traffic.queries.clear()
    few = await run(recording_runner, "ListEvents", {**EVERYTHING, "limit": 7})
    assert [e["id"] for e in few.data["events"]] == ids[:7]
    assert [q["limit"] for q in traffic.queries] == [["7"]]

    newest = await run(
        recording_runner, "ListEvents", {**EVERYTHING, "direction": "desc", "limit": 150}
    )
    assert [e["id"] for e in newest.data["events"]] == ids[::-1][:150]

    default = await run(recording_runner, "ListEvents", {**EVERYTHING})
    assert default.data["count"] == 100  # the schema's default limit


Predicate = Callable[[dict[str, Any], datetime], bool]


def _me(event: dict[str, Any]) -> bool:
    return organizer_email(event) == "sam@example.com"


FILTERS: dict[str, tuple[dict[str, Any], Predicate]] = {
    "state=canceled": (
        {"period": "all", "state": "canceled", "attendance": "any"},
        lambda e, _now: e["state"] == "canceled",
    ),
    "state=awaiting_approval": (
        {"period": "all", "state": "awaiting_approval", "attendance": "any"},
        lambda e, _now: e["state"] == "awaiting_approval",
    ),
    "attendance=attending": (
        {"period": "all", "state": "all", "attendance": "attending"},
        lambda e, _now: _me(e),
    ),
    "period=past": (
        {"period": "past", "state": "all", "attendance": "any"},
        lambda e, now: parse_instant(e["end_at"]) <= now,
    ),
    "period=upcoming": (
        {"period": "upcoming", "state": "all", "attendance": "any"},
        lambda e, now: parse_instant(e["end_at"]) > now,
    ),
    "defaults (upcoming, confirmed, attending)": (
        {},
        lambda e, now: e["state"] == "confirmed" and _me(e) and parse_instant(e["end_at"]) > now,
    ),
    "past, confirmed, attending, desc": (
        {"period": "past", "direction": "desc"},
        lambda e, now: e["state"] == "confirmed" and _me(e) and parse_instant(e["end_at"]) <= now,
    ),
}


@pytest.mark.parametrize("name", list(FILTERS))
async def test_list_events_filters_match_the_sandbox(
    runner: Runner, savvycal_integration: str, name: str
) -> None:
    data, keep = FILTERS[name]
    full = await everything(runner)
    before = datetime.now(UTC)
    result = await run(runner, "ListEvents", {**data, "limit": 100000})
    after = datetime.now(UTC)
    assert result.port == "success", result
    got = [e["id"] for e in result.data["events"]]
    assert len(got) == len(set(got)) == result.data["count"]
    # Time-dependent filters: an event may end between the two instants, nothing else.
    surely = {e["id"] for e in full if keep(e, before) and keep(e, after)}
    maybe = {e["id"] for e in full if keep(e, before) or keep(e, after)}
    assert surely <= set(got) <= maybe
    assert 0 < len(got) < len(full), "the filter narrows nothing: check the seed"
    order = [e["id"] for e in full if e["id"] in set(got)]
    assert got == (order[::-1] if data.get("direction") == "desc" else order)


async def test_list_events_state_counts_match_the_sandbox_state(
    runner: Runner, savvycal_integration: str, savvycal_sandbox: SandboxProcess
) -> None:
    counts = savvycal_sandbox.savvycal_state()["event_states"]
    assert len(counts) >= 5
    for state, count in counts.items():
        result = await run(
            runner,
            "ListEvents",
            {"period": "all", "state": state, "attendance": "any", "limit": 100000},
        )
        assert result.data["count"] == count, state
        assert {e["state"] for e in result.data["events"]} == {state}


async def test_list_events_by_link_and_fixed_period(
    runner: Runner, savvycal_integration: str, savvycal_sandbox: SandboxProcess
) -> None:
    full = await everything(runner)
    links = link_ids(savvycal_sandbox)
    seen = 0
    for slug, link_id in links.items():
        result = await run(runner, "ListEvents", {**EVERYTHING, "link": link_id, "limit": 100000})
        expected = [e["id"] for e in full if e["link"]["id"] == link_id]
        assert expected, slug
        assert [e["id"] for e in result.data["events"]] == expected
        seen += len(expected)
    assert seen == len(full)

    # A fixed period keeps the events that start on those (UTC) days, both included.
    first, last = full[40]["start_at"][:10], full[90]["start_at"][:10]
    fixed = await run(
        runner,
        "ListEvents",
        {"period": "fixed", "from": first, "until": last, "state": "all", "attendance": "any"},
    )
    expected = [e["id"] for e in full if first <= e["start_at"][:10] <= last]
    assert len(expected) > 40
    assert [e["id"] for e in fixed.data["events"]] == expected


async def test_list_events_refuses_a_fixed_period_without_dates(
    runner: Runner, savvycal_integration: str
) -> None:
    with pytest.raises(ValidationError):
        await run(runner, "ListEvents", {"period": "fixed"})
    with pytest.raises(ValidationError):
        await run(runner, "ListEvents", {"from": "2030-01-01", "until": "2030-01-31"})
    with pytest.raises(ValidationError):
        await run(runner, "ListEvents", {"state": "booked"})


# --- events: one event, booking, cancelling ---------------------------------------------


async def test_get_event_known_and_unknown(
    runner: Runner, savvycal_integration: str, savvycal_sandbox: SandboxProcess
) -> None:
    shown = savvycal_sandbox.savvycal_state()["events"]
    for event in (shown[0], shown[len(shown) // 2], shown[-1]):
        found = await run(runner, "GetEvent", {"event_id": event["id"]})
        assert found.port == "success", found
        assert found.data == event

    missing = await run(runner, "GetEvent", {"event_id": "event_NOSUCHEVENT"})
    assert missing.success
    assert missing.port == "not_found"
    assert missing.code == "NOT_FOUND"
    assert missing.data["status"] == 404
    assert missing.message == "Not found"


async def test_book_event_then_the_same_time_is_a_conflict(
    recording_runner: Runner,
    savvycal_integration: str,
    savvycal_sandbox: SandboxProcess,
    traffic: Traffic,
) -> None:
    runner = recording_runner
    link_id = link_ids(savvycal_sandbox)["30min"]
    start = (await open_starts(runner, link_id))[0]
    paris = parse_instant(start).astimezone(ZoneInfo("Europe/Paris")).isoformat()
    data = {
        "link_id": link_id,
        "start_at": paris,  # an offset other than UTC: sent to SavvyCal in UTC
        "duration": 30,
        "display_name": "Ada Lovelace",
        "email": "ada@example.com",
        "time_zone": "Europe/Paris",
        "phone_number": PHONE,
        "metadata": {"source": "e2e"},
    }
    booked = await run(runner, "BookEvent", data)
    assert booked.success and booked.port == "success", booked
    assert booked.data["state"] == "confirmed"
    assert booked.data["start_at"] == start
    assert parse_instant(booked.data["end_at"]) - parse_instant(start) == timedelta(minutes=30)
    assert booked.meta["booking_changes"] == 1
    [(method, path, sent)] = traffic.bodies
    assert (method, path) == ("POST", f"/savvycal/v1/links/{link_id}/events")
    end = (parse_instant(start) + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (sent["start_at"], sent["end_at"]) == (start, end)  # in UTC
    assert sent["phone_number"] == PHONE_E164

    stored = sandbox_event(savvycal_sandbox, booked.data["id"])
    assert stored["start_at"] == start
    assert stored["link"]["id"] == link_id
    assert stored["metadata"] == {"source": "e2e"}
    assert stored["scheduler"]["email"] == "ada@example.com"
    assert stored["scheduler"]["phone_number"] == PHONE_E164
    assert stored["scheduler"]["time_zone"] == "Europe/Paris"
    assert start not in await open_starts(runner, link_id)

    again = await run(runner, "BookEvent", {**data, "start_at": start, "email": "bo@example.com"})
    assert again.success and again.port == "conflict", again
    assert again.code == "SLOT_TAKEN"
    assert again.message == "start_at: is not an available time slot"
    assert again.data["status"] == 422
    assert "booking_changes" not in again.meta


async def test_book_event_on_an_approval_link_awaits_approval(
    runner: Runner, savvycal_integration: str, savvycal_sandbox: SandboxProcess
) -> None:
    link_id = link_ids(savvycal_sandbox)["discovery"]
    tomorrow = next_week()[0].isoformat()
    options = await runner.fetch_options(
        APP, "link_slots", "sc", {"link_id": link_id, "from": tomorrow}
    )
    # The link offers 30 and 60 minutes: one option per open (start, duration).
    assert {o.description for o in options} == {"30m", "60m"}
    start = next(str(o.value) for o in options if o.description == "60m")
    end = (parse_instant(start) + timedelta(minutes=60)).isoformat()
    result = await run(
        runner,
        "BookEvent",
        {
            "link_id": link_id,
            "start_at": start,
            "end_at": end,
            "display_name": "Grace Hopper",
            "email": "grace@example.com",
            "time_zone": "America/New_York",
        },
    )
    assert result.port == "success", result
    assert result.data["state"] == "awaiting_approval"
    assert result.data["duration"] == 60
    assert sandbox_event(savvycal_sandbox, result.data["id"])["state"] == "awaiting_approval"


async def test_book_event_refusals(
    runner: Runner, savvycal_integration: str, savvycal_sandbox: SandboxProcess
) -> None:
    link_id = link_ids(savvycal_sandbox)["30min"]
    start = (await open_starts(runner, link_id))[0]
    base = {
        "link_id": link_id,
        "start_at": start,
        "display_name": "Ada Lovelace",
        "email": "ada@example.com",
        "time_zone": "UTC",
    }
    # A duration the link does not offer: SavvyCal's field error, not a conflict.
    wrong_length = await run(runner, "BookEvent", {**base, "duration": 45})
    assert not wrong_length.success
    assert wrong_length.code == "PROVIDER_ERROR"
    assert "end_at: does not match an available duration" in (wrong_length.message or "")

    # A Saturday is never open on a Mon-Fri link: a conflict.
    day = datetime.now(UTC).date() + timedelta(days=8)
    saturday = day + timedelta(days=(5 - day.weekday()) % 7)
    closed = await run(
        runner, "BookEvent", {**base, "start_at": f"{saturday}T15:00:00Z", "duration": 30}
    )
    assert closed.port == "conflict", closed

    unknown = await run(runner, "BookEvent", {**base, "link_id": "link_NOSUCH", "duration": 30})
    assert not unknown.success
    assert unknown.code == "NOT_FOUND"

    with pytest.raises(ValidationError):  # both an end and a duration
        await run(runner, "BookEvent", {**base, "duration": 30, "end_at": start})
    assert start in await open_starts(runner, link_id)  # nothing was booked


async def test_cancel_event(
    runner: Runner, savvycal_integration: str, savvycal_sandbox: SandboxProcess
) -> None:
    link_id = link_ids(savvycal_sandbox)["30min"]
    event = await book(runner, link_id)
    assert event["start_at"] not in await open_starts(runner, link_id)

    cancelled = await run(
        runner, "CancelEvent", {"event_id": event["id"], "cancel_reason": "e2e says no"}
    )
    assert cancelled.port == "success", cancelled
    assert cancelled.data["state"] == "canceled"
    assert cancelled.meta["booking_changes"] == 1
    stored = sandbox_event(savvycal_sandbox, event["id"])
    assert stored["state"] == "canceled"
    assert stored["cancel_reason"] == "e2e says no"
    assert stored["canceled_at"]
    assert event["start_at"] in await open_starts(runner, link_id)  # the time is open again

    # SavvyCal refuses to cancel twice (422): a failure with its message.
    again = await run(runner, "CancelEvent", {"event_id": event["id"]})
    assert not again.success
    assert again.code == "PROVIDER_ERROR"
    assert again.message == "SavvyCal: Event is already canceled"

    missing = await run(runner, "CancelEvent", {"event_id": "event_NOSUCHEVENT"})
    assert missing.success and missing.port == "not_found", missing


# --- links and slots --------------------------------------------------------------------


async def test_list_links_matches_the_sandbox(
    runner: Runner, savvycal_integration: str, savvycal_sandbox: SandboxProcess
) -> None:
    links = savvycal_sandbox.savvycal_state()["links"]
    result = await run(runner, "ListLinks", {})
    assert result.port == "success", result
    assert result.data["count"] == len(links) == 4
    assert result.data["links"] == links

    two = await run(runner, "ListLinks", {"limit": 2})
    assert two.data["links"] == links[:2]


async def test_links_fetcher(
    runner: Runner, savvycal_integration: str, savvycal_sandbox: SandboxProcess
) -> None:
    options = await runner.fetch_options(APP, "links", savvycal_integration)
    ids = link_ids(savvycal_sandbox)
    assert [o.value for o in options] == list(ids.values())
    by_value = {o.value: o for o in options}
    assert by_value[ids["30min"]].label == "30 Minute Meeting (30m)"
    assert by_value[ids["30min"]].description == "30min · active"
    assert by_value[ids["discovery"]].label == "Discovery Call (30m)"
    assert by_value[ids["team-intro"]].label == "Team Intro (60m)"
    assert by_value[ids["workshop"]].label == "Group Workshop (60m)"


async def test_get_link_slots_matches_the_link_slots_fetcher(
    runner: Runner, savvycal_integration: str, savvycal_sandbox: SandboxProcess
) -> None:
    link_id = link_ids(savvycal_sandbox)["30min"]
    first, last = next_week()
    result = await run(
        runner,
        "GetLinkSlots",
        {"link_id": link_id, "from": first.isoformat(), "until": last.isoformat()},
    )
    assert result.port == "success", result
    slots = result.data["slots"]
    assert result.data["count"] == len(slots) > 0
    assert all(s["duration"] == 30 for s in slots)
    starts = [parse_instant(s["start_at"]) for s in slots]
    assert starts == sorted(starts)
    assert first <= starts[0].date() and starts[-1].date() <= last + timedelta(days=1)
    new_york = ZoneInfo("America/New_York")
    assert all(s.astimezone(new_york).weekday() < 5 for s in starts)
    assert all(9 <= s.astimezone(new_york).hour < 17 for s in starts)

    span = {"from": first.isoformat(), "until": last.isoformat()}
    fetched = await open_starts(runner, link_id, **span)
    assert fetched == [s["start_at"] for s in slots]
    assert all(v.endswith("Z") for v in fetched)

    # A date-time bound is sent in UTC and narrows to its day.
    later = await run(
        runner,
        "GetLinkSlots",
        {"link_id": link_id, "from": f"{last}T08:00:00-05:00", "until": f"{last}T23:00:00Z"},
    )
    assert later.port == "success", later
    assert {s["start_at"][:10] for s in later.data["slots"]} <= {str(last)}

    missing = await run(runner, "GetLinkSlots", {"link_id": "link_NOSUCH"})
    assert missing.success and missing.port == "not_found", missing


async def test_link_slots_fetcher_depends_on_the_link(
    runner: Runner, savvycal_integration: str, savvycal_sandbox: SandboxProcess
) -> None:
    ids = link_ids(savvycal_sandbox)
    first, last = next_week()
    span = {"from": first.isoformat(), "until": last.isoformat()}

    short = await runner.fetch_options(
        APP, "link_slots", savvycal_integration, {"link_id": ids["30min"], **span}
    )
    team = await runner.fetch_options(
        APP, "link_slots", savvycal_integration, {"link_id": ids["team-intro"], **span}
    )
    assert short and team
    assert {o.description for o in short} == {"30m"}
    assert {o.description for o in team} == {"60m"}
    assert [o.value for o in short] != [o.value for o in team]
    assert all(o.label.endswith("(UTC)") for o in short)

    # The time zone changes the labels, never the instants offered.
    tokyo = await runner.fetch_options(
        APP,
        "link_slots",
        savvycal_integration,
        {"link_id": ids["30min"], "time_zone": "Asia/Tokyo", **span},
    )
    assert [o.value for o in tokyo] == [o.value for o in short]
    assert tokyo[0].label.endswith("(Asia/Tokyo)") and tokyo[0].label != short[0].label

    with pytest.raises(ValidationError, match="link_id"):
        await runner.fetch_options(APP, "link_slots", savvycal_integration, span)
    with pytest.raises(ValidationError):
        await runner.fetch_options(
            APP, "link_slots", savvycal_integration, {"link_id": ids["30min"], "from": "soon"}
        )
    with pytest.raises(CalflowError) as unknown:
        await runner.fetch_options(
            APP, "link_slots", savvycal_integration, {"link_id": "link_NOSUCH"}
        )
    assert unknown.value.code == "PROVIDER_ERROR"
    assert "Not found" in unknown.value.message


# --- webhooks ---------------------------------------------------------------------------


def deliveries(receiver: Receiver, event_type: str) -> list[tuple[bytes, dict[str, str], Any]]:
    out = []
    for r in receiver.requests:
        body = json.loads(r.body)
        if body.get("type") == event_type:
            out.append((r.body, r.headers, body))
    return out


def hooks_for(sb: SandboxProcess, url: str) -> list[dict[str, Any]]:
    return [h for h in sb.savvycal_state()["webhooks"] if h["url"] == url]


def web_booking(sb: SandboxProcess, link_id: str, start: str, minutes: int) -> dict[str, Any]:
    """A booking made on SavvyCal's own scheduling page (not through the app)."""
    end = (parse_instant(start) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return sb.control(
        f"savvycal/links/{link_id}/events",
        {
            "display_name": "Linus Torvalds",
            "email": "linus@example.com",
            "start_at": start,
            "end_at": end,
            "time_zone": "Europe/Helsinki",
        },
    )


async def test_register_webhook_secret_verifies_deliveries(
    runner: Runner,
    savvycal_integration: str,
    store: IntegrationStore,
    savvycal_sandbox: SandboxProcess,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    sb = savvycal_sandbox
    registered = await run(runner, "RegisterWebhook", {"url": receiver.url})
    assert registered.port == "success", registered
    assert registered.data["reused"] is False
    assert registered.data["url"] == receiver.url
    assert "secret" not in registered.data
    hook_id = registered.data["id"]

    saved = store.get(savvycal_integration)
    secret = saved.value("webhook_secret")
    assert saved.value("webhook_id") == hook_id
    assert "webhook_secret" in saved.secrets and "webhook_secret" not in saved.config
    [hook] = hooks_for(sb, receiver.url)
    assert hook["id"] == hook_id and hook["secret"] == secret
    assert secret not in repr(saved) and secret not in json.dumps(saved.public_view())
    for file in tmp_path.rglob("*"):  # encrypted at rest: nowhere in clear on disk
        if file.is_file():
            assert secret.encode() not in file.read_bytes(), file

    try:
        links = link_ids(sb)
        start = (await open_starts(runner, links["30min"]))[0]
        made = web_booking(sb, links["30min"], start, 30)
        requested = await book(runner, links["discovery"])
        sb.control(f"savvycal/events/{requested['id']}/approve")
        await run(runner, "CancelEvent", {"event_id": made["id"]})
        sb.control("savvycal/flush")

        created = deliveries(receiver, "event.created")
        # The web booking and the approved request (approval sends both types).
        assert sorted(d[2]["payload"]["id"] for d in created) == sorted(
            [made["id"], requested["id"]]
        )
        assert {d[2]["payload"]["start_at"] for d in created} >= {start}
        assert [d[2]["payload"]["id"] for d in deliveries(receiver, "event.requested")] == [
            requested["id"]
        ]
        assert len(deliveries(receiver, "event.approved")) == 1
        [canceled] = deliveries(receiver, "event.canceled")
        assert canceled[2]["payload"]["state"] == "canceled"

        assert len(receiver.requests) == 5
        for raw, headers, body in [*created, canceled]:
            assert body["version"] == "2020-11-18"
            assert headers["x-savvycal-webhook-id"] == hook_id
            assert verify_signature(secret, raw, headers[SIGNATURE_HEADER])
            assert not verify_signature(secret[::-1], raw, headers[SIGNATURE_HEADER])
            assert not verify_signature(secret, raw + b" ", headers[SIGNATURE_HEADER])

        # Registering again reuses the webhook calflow knows, and keeps its secret.
        again = await run(runner, "RegisterWebhook", {"url": receiver.url})
        assert again.port == "success", again
        assert again.data["reused"] is True
        assert again.data["id"] == hook_id
        assert len(hooks_for(sb, receiver.url)) == 1
        assert store.get(savvycal_integration).value("webhook_secret") == secret
    finally:
        removed = await run(runner, "UnregisterWebhook", {})
    assert removed.port == "success", removed
    assert removed.data == {"deleted": [hook_id], "already_gone": []}
    assert not hooks_for(sb, receiver.url)
    forgotten = store.get(savvycal_integration)
    assert "webhook_secret" not in forgotten.secrets
    assert "webhook_id" not in forgotten.config

    # No webhook, no delivery.
    heard = len(receiver.requests)
    start = (await open_starts(runner, link_ids(sb)["30min"]))[0]
    web_booking(sb, link_ids(sb)["30min"], start, 30)
    sb.control("savvycal/flush")
    assert len(receiver.requests) == heard

    gone = await run(runner, "UnregisterWebhook", {"webhook_id": hook_id})
    assert gone.success and gone.port == "success", gone
    assert gone.data == {"deleted": [], "already_gone": [hook_id]}
    with pytest.raises(ValidationError, match="webhook_id or url"):
        await run(runner, "UnregisterWebhook", {})


async def test_unregister_webhook_by_url_removes_every_match(
    runner: Runner, savvycal_integration: str, savvycal_sandbox: SandboxProcess, receiver: Receiver
) -> None:
    url = receiver.url + "/by-url"
    for _ in range(2):  # made elsewhere: calflow has no secret for either
        made = api(savvycal_sandbox, "POST", "/v1/webhooks", json={"url": url})
        assert made.status_code == 201, made.text
    other = await run(runner, "RegisterWebhook", {"url": receiver.url + "/other"})
    try:
        assert len(hooks_for(savvycal_sandbox, url)) == 2
        removed = await run(runner, "UnregisterWebhook", {"url": url})
        assert removed.port == "success", removed
        assert len(removed.data["deleted"]) == 2
        assert not hooks_for(savvycal_sandbox, url)
        assert len(hooks_for(savvycal_sandbox, receiver.url + "/other")) == 1
    finally:
        await run(runner, "UnregisterWebhook", {"webhook_id": other.data["id"]})
    assert not hooks_for(savvycal_sandbox, receiver.url + "/other")


async def test_register_webhook_refuses_a_url_calflow_cannot_use(
    runner: Runner, savvycal_integration: str, store: IntegrationStore
) -> None:
    """Refused by calflow (netpolicy) before SavvyCal is asked to call it."""
    for url, why in [("ftp://example.com/hooks", "only http and https"),
                     ("http://169.254.169.254/hooks", "link-local")]:  # fmt: skip
        with pytest.raises(ValidationError, match=why) as caught:
            await run(runner, "RegisterWebhook", {"url": url})
        assert caught.value.errors[0].path == "url"
    assert "webhook_secret" not in store.get(savvycal_integration).secrets


# --- OAuth --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oauth_sandbox() -> Iterator[SandboxProcess]:
    """A sandbox of its own: refresh tokens rotate once used, and its clock is moved."""
    with sandbox_process(API_KEY, savvycal_token=SAVVYCAL_TOKEN, savvycal_seed=0) as sb:
        yield sb


def oauth_integration(
    store: IntegrationStore, sb: SandboxProcess, name: str, **override: str
) -> str:
    oauth = sb.savvycal_state()["oauth"]
    fields = {
        "base_url": f"{sb.savvycal}/v1",
        "token_url": f"{sb.savvycal}/oauth/token",
        "oauth_client_id": oauth["client_id"],
        "access_token": "expired-or-revoked-access-token",
        "refresh_token": oauth["refresh_token"],
        "oauth_client_secret": oauth["client_secret"],
        **override,
    }
    secret_keys = ("access_token", "refresh_token", "oauth_client_secret")
    store.add(
        APP,
        name,
        {k: v for k, v in fields.items() if k not in secret_keys},
        {k: v for k, v in fields.items() if k in secret_keys},
    )
    return name


async def test_oauth_a_refused_refresh_is_the_original_auth_error(
    runner: Runner, store: IntegrationStore, oauth_sandbox: SandboxProcess
) -> None:
    name = oauth_integration(store, oauth_sandbox, "wrong-client", oauth_client_secret="nope")
    result = await run(runner, "GetMe", {}, name)
    assert not result.success
    assert result.code == "AUTH_ERROR"
    assert result.message == "SavvyCal: Unauthenticated"
    assert store.get(name).value("access_token") == "expired-or-revoked-access-token"

    name = oauth_integration(store, oauth_sandbox, "wrong-grant", refresh_token="rt_unknown")
    result = await run(runner, "GetMe", {}, name)
    assert result.code == "AUTH_ERROR"
    assert store.get(name).value("refresh_token") == "rt_unknown"


async def test_oauth_expired_access_token_is_refreshed_and_stored(
    runner: Runner, store: IntegrationStore, oauth_sandbox: SandboxProcess
) -> None:
    sb = oauth_sandbox
    seeded = sb.savvycal_state()["oauth"]["refresh_token"]
    name = oauth_integration(store, sb, "oauth")

    me = await run(runner, "GetMe", {}, name)
    assert me.port == "success", me
    assert me.data["email"] == "sam@example.com"
    saved = store.get(name)
    access, refresh = saved.value("access_token"), saved.value("refresh_token")
    assert access != "expired-or-revoked-access-token"
    assert refresh != seeded
    assert {"access_token", "refresh_token"} <= set(saved.secrets)
    assert "access_token" not in saved.config
    assert api(sb, "GET", "/v1/me", token=access).status_code == 200
    # The sandbox rotated the refresh token: the seeded one is spent.
    spent = api(
        sb,
        "POST",
        "/oauth/token",
        token="",
        data={
            "grant_type": "refresh_token",
            "refresh_token": seeded,
            "client_id": saved.value("oauth_client_id"),
            "client_secret": saved.value("oauth_client_secret"),
        },
    )
    assert spent.status_code == 400 and spent.json()["error"] == "invalid_grant"

    # Two hours later the access token has expired: the stored refresh token renews it.
    sb.control("clock", {"offset_s": 7200 + 60})
    try:
        assert api(sb, "GET", "/v1/me", token=access).status_code == 401
        links = await run(runner, "ListLinks", {}, name)
    finally:
        sb.control("clock", {"offset_s": 0})
    assert links.port == "success", links
    assert links.data["count"] == 4
    renewed = store.get(name)
    assert renewed.value("access_token") not in (access, None)
    assert renewed.value("refresh_token") not in (refresh, None)
    assert api(sb, "GET", "/v1/me", token=renewed.value("access_token")).status_code == 200

    # A token that is simply valid is used as is: nothing is refreshed.
    again = await run(runner, "GetMe", {}, name)
    assert again.port == "success"
    assert store.get(name).value("access_token") == renewed.value("access_token")
