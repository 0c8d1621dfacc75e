"""Replays of the sandbox's SavvyCal and Cal.com history into a receiver process."""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from calflow.errors import ConfigError, ValidationError
from calflow.integrations import IntegrationStore
from calflow.replay import Delivery, ReplayEngine, ReplayOptions
from calflow.replay.savvycal import type_for
from e2e.sandbox_process import SandboxProcess

from .conftest import (
    SECRET,
    Receiver,
    all_calcom_bookings,
    all_savvycal_events,
    start_receiver,
    stop,
)

pytestmark = pytest.mark.slow


def options(integration: str, receiver: Receiver, **extra: Any) -> ReplayOptions:
    base: dict[str, Any] = {
        "integration": integration,
        "to": receiver.url,
        "secret": SECRET,
        "allow_private": True,
    }
    return ReplayOptions(**{**base, **extra})


def assert_adds_up(data: dict[str, Any]) -> None:
    assert data["sent"] + data["skipped"] + data["failed"] == data["fetched"]


async def test_savvycal_history_arrives_once_each_signed_with_the_right_type(
    engine: ReplayEngine,
    receiver: Receiver,
    sandbox: SandboxProcess,
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = all_savvycal_events(sandbox)
    assert len(events) > 200  # several pages
    sample = ("calflow_replay_items_total", {"provider": "savvycal", "status": "sent"})
    before = REGISTRY.get_sample_value(*sample) or 0
    with caplog.at_level(logging.INFO, logger="calflow.replay"):
        summary = await engine.start(options("sc", receiver, concurrency=8))
    data = summary.to_dict()
    assert REGISTRY.get_sample_value(*sample) == before + len(events)  # counted per item
    (line,) = [r for r in caplog.records if r.name == "calflow.replay"]  # one per job
    assert line.getMessage() == f"replay job {data['job']} savvycal: completed"
    assert data["status"] == "completed", data
    assert (data["fetched"], data["sent"], data["failed"]) == (len(events), len(events), 0)
    stats = receiver.stats()
    assert stats["total"] == len(events)
    assert stats["unique"] == len(events) and stats["duplicates"] == 0
    assert stats["bad_signatures"] == 0
    by_object = {r["object"]: r for r in stats["records"]}
    assert set(by_object) == {e["id"] for e in events}
    for event in events:
        record = by_object[event["id"]]
        assert record["kind"] == type_for(event)
        assert record["envelope_id"] == record["id"]  # the envelope id is the replay id
    kinds = Counter(r["kind"] for r in stats["records"])
    assert {"event.created", "event.canceled"} <= set(kinds)
    assert data["job_totals"] == {"items": len(events), "sent": len(events), "skipped": 0,
                                  "failed": 0}  # fmt: skip


async def test_running_twice_sends_the_same_ids_and_bytes(
    engine: ReplayEngine, receiver: Receiver
) -> None:
    first = await engine.start(options("sc", receiver, limit=120))
    once = {r["id"]: r["sha256"] for r in receiver.stats()["records"]}
    second = await engine.start(options("sc", receiver, limit=120))
    assert first.job != second.job
    stats = receiver.stats()
    assert stats["total"] == 240 and stats["unique"] == 120 and stats["duplicates"] == 120
    twice: dict[str, set[str]] = {}
    for r in stats["records"]:
        twice.setdefault(r["id"], set()).add(r["sha256"])
    assert all(twice[i] == {h} for i, h in once.items())  # byte-identical bodies


async def test_calcom_history_is_replayed_as_cal_com_deliveries(
    engine: ReplayEngine, receiver: Receiver, sandbox: SandboxProcess
) -> None:
    bookings = all_calcom_bookings(sandbox)
    moved = [b for b in bookings if b["status"] == "cancelled" and b.get("rescheduledToUid")]
    summary = await engine.start(options("cc", receiver))
    data = summary.to_dict()
    assert_adds_up(data)
    assert data["fetched"] == len(bookings)
    assert data["sent"] == len(bookings) - len(moved)
    assert data["skipped"] == len(moved)
    assert data["skipped_reasons"] == ({"rescheduled": len(moved)} if moved else {})
    stats = receiver.stats()
    assert stats["bad_signatures"] == 0 and stats["duplicates"] == 0
    expected = {}
    for b in bookings:
        if b in moved:
            continue
        if b["status"] == "cancelled":
            expected[b["uid"]] = "BOOKING_CANCELLED"
        elif b["status"] == "pending":
            expected[b["uid"]] = "BOOKING_REQUESTED"
        elif b["status"] == "rejected":
            expected[b["uid"]] = "BOOKING_REJECTED"
        elif b.get("rescheduledFromUid"):
            expected[b["uid"]] = "BOOKING_RESCHEDULED"
        else:
            expected[b["uid"]] = "BOOKING_CREATED"
    assert {r["object"]: r["kind"] for r in stats["records"]} == expected


async def test_calcom_payload_carries_what_receivers_read(
    engine: ReplayEngine, receiver: Receiver, sandbox: SandboxProcess
) -> None:
    """A delivery body has Cal.com's envelope and the booking fields of a live payload."""
    bookings = {b["uid"]: b for b in all_calcom_bookings(sandbox)}
    got: list[Delivery] = []

    async def intake(delivery: Delivery) -> str:
        got.append(delivery)
        return "accepted"

    capture = ReplayEngine(engine.store, intake=intake)
    summary = await capture.start(ReplayOptions(integration="cc", into="calflow", limit=40))
    assert summary.counts.sent + summary.counts.skipped == 40
    for d in got:
        body = json.loads(d.body)
        assert set(body) == {"triggerEvent", "createdAt", "payload"}
        p, b = body["payload"], bookings[d.object_id]
        assert p["uid"] == b["uid"] and p["bookingId"] == b["id"]
        assert p["eventTypeId"] == b["eventTypeId"] and p["length"] == b["duration"]
        assert p["startTime"] == b["start"].replace(".000Z", "Z")
        assert [a["email"] for a in p["attendees"]][: len(b["attendees"])] == [
            a["email"] for a in b["attendees"]
        ]
        phones = [a.get("phoneNumber") for a in b["attendees"] if a.get("phoneNumber")]
        if phones:
            assert p["attendees"][0]["phoneNumber"] == phones[0]
        assert p["organizer"]["email"] == b["hosts"][0]["email"]
        assert d.headers["X-Cal-Signature-256"] == "no-secret-provided"  # no secret given


async def test_since_until_and_kinds_select_and_the_rest_is_skipped_with_reasons(
    engine: ReplayEngine, receiver: Receiver, sandbox: SandboxProcess
) -> None:
    events = all_savvycal_events(sandbox)
    now = datetime.now(UTC)
    since, until = now - timedelta(days=20), now + timedelta(days=10)

    def start(e: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(e["start_at"].replace("Z", "+00:00"))

    wanted = [
        e for e in events
        if since <= start(e) < until and type_for(e) in ("event.created", "event.canceled")
    ]  # fmt: skip
    summary = await engine.start(
        options("sc", receiver, since=since, until=until, kinds=("created", "event.canceled"))
    )
    data = summary.to_dict()
    assert_adds_up(data)
    assert data["fetched"] == len(events)
    assert data["sent"] == len(wanted) > 0
    assert data["skipped"] == len(events) - len(wanted)
    assert set(data["skipped_reasons"]) <= {"filtered"}
    assert {r["object"] for r in receiver.stats()["records"]} == {e["id"] for e in wanted}


async def test_dry_run_sends_nothing_and_lists_what_it_would_send(
    engine: ReplayEngine, receiver: Receiver, sandbox: SandboxProcess
) -> None:
    events = all_savvycal_events(sandbox)
    summary = await engine.start(
        ReplayOptions(integration="sc", dry_run=True, kinds=("cancelled",))
    )
    data = summary.to_dict()
    cancelled = [e for e in events if e["state"] == "canceled"]
    assert data["sent"] == 0 and data["fetched"] == len(events)
    assert data["skipped_reasons"]["dry run"] == len(cancelled) > 0
    assert {w["object"] for w in data["would_send"]} == {e["id"] for e in cancelled}
    assert receiver.stats()["total"] == 0
    assert engine.jobs.totals(summary.job)["items"] == 0  # a dry run records no items...
    counts = engine.jobs.get(summary.job).counts  # ...but keeps its counts on the job
    assert counts is not None
    assert (counts["fetched"], counts["would_send"], counts["sent"]) == (
        len(events), len(cancelled), 0,
    )  # fmt: skip
    assert counts["skipped"] == len(events) and counts["skipped_reasons"]["filtered"] > 0
    assert engine.jobs.get(summary.job).public()["counts"] == counts


async def test_a_4xx_target_fails_each_item_once_with_the_status(
    engine: ReplayEngine, receiver: Receiver
) -> None:
    receiver.mode(status=400)
    summary = await engine.start(options("sc", receiver, limit=30, max_attempts=4))
    data = summary.to_dict()
    assert data["failed"] == 30 and data["sent"] == 0
    assert list(data["failed_reasons"]) == ["target refused"]
    items = engine.jobs.items(summary.job, "failed")
    assert all(i["http_status"] == 400 and i["attempts"] == 1 for i in items)
    assert not summary.ok


async def test_5xx_and_429_are_retried_until_sent(engine: ReplayEngine, receiver: Receiver) -> None:
    receiver.mode(fail_first=2, fail_status=503)
    summary = await engine.start(options("sc", receiver, limit=25))
    assert summary.counts.sent == 25 and summary.counts.failed == 0
    assert {i["attempts"] for i in engine.jobs.items(summary.job, "sent")} == {3}
    receiver.reset()
    receiver.mode(fail_first=1, fail_status=429, retry_after="0.2")
    summary = await engine.start(options("sc", receiver, limit=10))
    assert summary.counts.sent == 10
    assert summary.duration_s >= 0.2  # Retry-After was honoured
    receiver.reset()
    receiver.mode(fail_first=9, fail_status=502)
    summary = await engine.start(options("sc", receiver, limit=5, max_attempts=3))
    assert summary.counts.failed == 5
    assert list(summary.to_dict()["failed_reasons"]) == ["target error"]


async def test_an_unreachable_target_stops_the_job_and_resume_finishes_it(
    engine: ReplayEngine, sandbox: SandboxProcess
) -> None:
    from e2e.sandbox_process import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks/replay"
    events = all_savvycal_events(sandbox)
    opts = ReplayOptions(integration="sc", to=url, secret=SECRET, allow_private=True,
                         max_attempts=2, concurrency=4)  # fmt: skip
    summary = await engine.start(opts)
    data = summary.to_dict()
    assert data["status"] == "failed"
    assert "unreachable" in data["error"]
    assert_adds_up(data)
    assert data["fetched"] < len(events)  # it stopped instead of failing everything
    proc, rec = start_receiver(port)
    try:
        resumed = await engine.resume(summary.job)
        assert resumed.status == "completed", resumed.to_dict()
        stats = rec.stats()
        assert stats["unique"] == len(events) and stats["duplicates"] == 0
        assert engine.jobs.totals(summary.job) == {
            "items": len(events), "sent": len(events), "skipped": 0, "failed": 0
        }  # fmt: skip
    finally:
        stop(proc)


async def test_resume_retries_failed_items_only(
    engine: ReplayEngine, receiver: Receiver, sandbox: SandboxProcess
) -> None:
    receiver.mode(status=422)
    summary = await engine.start(options("sc", receiver, limit=150))
    assert summary.counts.failed == 150
    receiver.mode()
    resumed = await engine.resume(summary.job)
    events = all_savvycal_events(sandbox)
    stats = receiver.stats()
    # the 150 failed ones are retried, then the rest of the history follows
    assert stats["unique"] == len(events) and stats["duplicates"] == 0
    assert resumed.counts.failed == 0
    assert engine.jobs.totals(summary.job)["sent"] == len(events)
    again = await engine.resume(summary.job)
    assert again.counts.fetched == 0 and receiver.stats()["total"] == len(events)


async def test_into_calflow_publishes_through_the_intake_and_never_twice(
    store: IntegrationStore, sandbox: SandboxProcess
) -> None:
    inbox: dict[str, Delivery] = {}

    async def intake(delivery: Delivery) -> str:
        if delivery.item_id in inbox:
            return "duplicate"
        inbox[delivery.item_id] = delivery
        return "accepted"

    engine = ReplayEngine(store, intake=intake)
    first = await engine.start(ReplayOptions(integration="sc", into="calflow"))
    second = await engine.start(ReplayOptions(integration="sc", into="calflow"))
    events = all_savvycal_events(sandbox)
    assert first.counts.sent == len(events) == len(inbox)
    assert second.counts.sent == 0 and second.counts.skipped == len(events)
    assert second.to_dict()["skipped_reasons"] == {"duplicate": len(events)}
    sample = next(iter(inbox.values()))
    assert sample.provider == "savvycal" and sample.integration_id == store.get("sc").id


async def test_into_calflow_publishes_into_the_inbox_once(
    engine: ReplayEngine, sandbox: SandboxProcess
) -> None:
    from calflow.events.inbox import Inbox

    first = await engine.start(ReplayOptions(integration="sc", into="calflow", limit=50))
    second = await engine.start(ReplayOptions(integration="sc", into="calflow", limit=50))
    assert first.counts.sent == 50 and second.counts.skipped == 50
    inbox = Inbox(engine.store.engine)
    events = inbox.list(limit=500)
    assert len(events) == 50 and {e["source"] for e in events} == {"replay"}
    assert all(e["deliveries"] == 2 for e in events)


async def test_private_targets_are_refused_unless_allowed(
    engine: ReplayEngine, receiver: Receiver
) -> None:
    with pytest.raises(ValidationError, match=r"loopback address .* pass allow_private=true"):
        await engine.start(ReplayOptions(integration="sc", to=receiver.url, secret=SECRET))
    with pytest.raises(ValidationError, match=r"link-local .*CALFLOW_ALLOW_PRIVATE"):
        await engine.start(
            ReplayOptions(integration="sc", to="http://169.254.169.254/latest", secret=SECRET)
        )
    assert engine.jobs.list() == []  # nothing was started
    assert receiver.stats()["total"] == 0


async def test_savvycal_without_a_secret_is_refused(
    engine: ReplayEngine, receiver: Receiver
) -> None:
    with pytest.raises(ConfigError, match="--secret"):
        await engine.start(ReplayOptions(integration="sc", to=receiver.url, allow_private=True))


async def test_a_bad_token_fails_the_job_with_a_clear_message(
    store: IntegrationStore, engine: ReplayEngine, receiver: Receiver
) -> None:
    store.update("sc", secrets={"token": "pt_secret_wrong"})
    summary = await engine.start(options("sc", receiver))
    data = summary.to_dict()
    assert data["status"] == "failed" and data["fetched"] == 0
    assert "reading SavvyCal history failed" in data["error"]
    assert "Unauthenticated" in data["error"]


async def test_garbage_from_the_provider_fails_the_job_clearly(
    store: IntegrationStore, engine: ReplayEngine, receiver: Receiver
) -> None:
    receiver.mode(html=True)
    token = store.get("sc").value("token")  # a new base_url needs its secrets again
    store.update(
        "sc", config={"base_url": f"http://127.0.0.1:{receiver.port}"}, secrets={"token": token}
    )
    summary = await engine.start(options("sc", receiver))
    assert summary.status == "failed"
    assert summary.error is not None and "instead of JSON" in summary.error
    assert "200 OK with text/html" in summary.error
    assert "Bad Gateway" not in summary.error  # the page (its title) is never echoed


async def test_a_source_at_a_refused_address_fails_the_job_before_any_call(
    store: IntegrationStore, engine: ReplayEngine, receiver: Receiver
) -> None:
    token = store.get("sc").value("token")
    store.update("sc", config={"base_url": "http://169.254.169.254"}, secrets={"token": token})
    with pytest.raises(ConfigError, match=r"base_url .*CALFLOW_ALLOW_PRIVATE") as caught:
        await engine.start(options("sc", receiver))
    assert str(token) not in caught.value.message
    (job,) = engine.jobs.list()
    assert job.status == "failed" and "link-local" in (job.error or "")
    assert receiver.stats()["total"] == 0


async def test_unknown_kinds_and_bad_options_are_validation_errors(engine: ReplayEngine) -> None:
    with pytest.raises(ValidationError, match="unknown kind"):
        await engine.start(ReplayOptions(integration="sc", dry_run=True, kinds=("booked_twice",)))
    with pytest.raises(ValidationError):
        await engine.start(ReplayOptions(integration="sc"))  # no target
    with pytest.raises(ValidationError):
        await engine.start(ReplayOptions(integration="sc", dry_run=True, concurrency=0))


async def test_rate_limit_paces_the_sends(engine: ReplayEngine, receiver: Receiver) -> None:
    summary = await engine.start(options("sc", receiver, limit=30, rate=100, concurrency=8))
    assert summary.counts.sent == 30
    assert summary.duration_s >= 0.28  # 30 sends at 100/s need 0.29 s


async def test_the_signing_secret_is_stored_encrypted(
    engine: ReplayEngine, receiver: Receiver, home: Path
) -> None:
    summary = await engine.start(options("sc", receiver, limit=5))
    job = engine.jobs.get(summary.job)
    assert job.status == "completed" and job.has_secret
    assert engine.jobs.secret(job.id) == SECRET  # kept for --resume
    for path in home.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
