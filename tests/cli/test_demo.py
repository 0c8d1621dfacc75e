"""``calflow demo`` as a real process: bookings become SMS and email within a minute.

The demo runs the sandbox, the receiver and the engine in one process on a fresh
SQLite home; its JSON summary says what it saw, and the home's database is read
afterwards to check the same story from calflow's side.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from calflow.db.engine import reset_engines
from calflow.events.inbox import Inbox
from calflow.integrations import IntegrationStore
from calflow.settings import Settings
from calflow.workflows.runs import RunStore
from calflow.workspaces import TokenStore
from cli.conftest import Result, run_calflow

pytestmark = pytest.mark.slow

ADA_PHONE = "+33612345678"
HOST_EMAIL = "demo@example.com"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Result, Path, float]]:
    """One ``calflow demo --fresh --json`` run (shared: it takes half a minute)."""
    root = tmp_path_factory.mktemp("demo")
    home = root / "demo-home"
    home.mkdir()
    (home / "calflow.db").write_text("left by an earlier demo: --fresh wipes it")
    began = time.monotonic()
    result = run_calflow(root, "demo", "--home", str(home), "--fresh", "--json", timeout=150)
    yield result, home, time.monotonic() - began
    reset_engines()


@pytest.fixture(scope="module")
def summary(demo: tuple[Result, Path, float]) -> dict[str, Any]:
    result, _, _ = demo
    assert result.code == 0, str(result)
    data: dict[str, Any] = result.json  # stdout is nothing but the JSON summary
    assert data["ok"] is True, data["missing"]
    return data


@pytest.fixture(scope="module")
def store(demo: tuple[Result, Path, float]) -> IntegrationStore:
    _, home, _ = demo
    return IntegrationStore.default(Settings(home=home, database_url=None, secret_keys=None))


def _paris(when: datetime) -> str:
    return when.astimezone(ZoneInfo("Europe/Paris")).strftime("%H:%M")


def test_the_demo_finishes_well_within_two_minutes(
    demo: tuple[Result, Path, float], summary: dict[str, Any]
) -> None:
    result, home, wall = demo
    assert wall < 90, f"the demo took {wall:.0f} s"
    assert summary["duration_s"] < 60
    assert all(summary["expected"].values()) and summary["missing"] == []
    # the timeline went to stderr, as it happened
    for text in ("BookMeeting → success", "Twilio sandbox got an SMS", "SMTP sink got an email"):
        assert text in result.err, result.stderr
    # everything stayed in --home, which --fresh emptied first
    assert not (home.parent / "calflow.db").exists()
    assert sorted(p.name for p in home.iterdir() if not p.name.endswith(("-wal", "-shm"))) == [
        "calflow.db", "calflow.db-writer-queue.lock", "calflow.db-writer.lock", "dbos.sqlite",
        "dispatch.lock", "secret.key", "serve.lock"]  # fmt: skip


def test_every_action_answered_on_its_port(summary: dict[str, Any]) -> None:
    ports = {s["step"]: s["port"] for s in summary["steps"]}
    assert ports == {
        "BookMeeting": "success",
        "BookMeeting (same slot again)": "conflict",
        "web booking": "success",
        "RescheduleBooking": "success",
        "CancelBooking": "success",
        "GetBooking (unknown uid)": "not_found",
    }


def test_integrations_and_webhook_are_set_up(
    summary: dict[str, Any], store: IntegrationStore
) -> None:
    found = {i.name: i for i in store.list()}
    assert {n: i.app_key for n, i in found.items()} == {
        "demo-calcom": "cal_com", "email": "email", "sms": "twilio"}  # fmt: skip
    calcom = found["demo-calcom"]
    assert calcom.value("webhook_secret") and calcom.value("webhook_id")
    assert summary["webhook"] == f"{summary['urls']['receiver']}/hooks/{calcom.id}"


def test_the_api_booking_and_its_webhook_are_one_event(
    summary: dict[str, Any], store: IntegrationStore
) -> None:
    inbox = Inbox(store.engine, store.workspace_id)
    uid = summary["bookings"]["api"]
    (event,) = inbox.list(booking_uid=uid)
    assert event["kind"] == "created" and event["deliveries"] == 2
    full = inbox.get(event["id"])
    assert sorted(d["source"] for d in full["deliveries"]) == ["action", "webhook"]
    assert [d["duplicate"] for d in full["deliveries"]] == [False, True]
    assert full["event"]["attendees"][0]["phone"] == ADA_PHONE
    (web,) = inbox.list(booking_uid=summary["bookings"]["web"], kind="created")
    assert web["source"] == "webhook" and web["deliveries"] == 1


def test_the_reminder_sms_reached_twilio_at_the_moved_time(
    summary: dict[str, Any], store: IntegrationStore
) -> None:
    runs = RunStore(store.engine, store.workspace_id)
    run = runs.get(summary["reminder"]["run"])
    first, moved = (datetime.fromisoformat(d) for d in summary["reminder"]["due"])
    assert moved - first == timedelta(seconds=-20)  # Ada's meeting moved 20 s earlier
    # the run followed the booking to its new uid and fired at the new time, not before
    assert run["workflow"] == "sms-reminder-24h" and run["status"] == "succeeded"
    assert run["booking_uid"] == summary["bookings"]["rescheduled"]
    (step,) = run["steps"]
    assert step["step"] == "sms" and step["port"] == "sent"
    assert moved <= datetime.fromisoformat(step["started_at"]) < first
    body = step["input"]["body"]
    assert step["input"]["to"] == ADA_PHONE
    sms = [m for m in summary["sms"] if m["to"] == ADA_PHONE and m["body"] == body]
    assert len(sms) == 1, summary["sms"]
    assert body.startswith("Hi Ada, a reminder: ")
    # rendered in Ada's time zone, at the rescheduled start (40 s after the due time)
    assert f"at {_paris(moved + timedelta(seconds=40))}" in body
    assert any("moved to" in m["body"] for m in summary["sms"] if m["to"] == ADA_PHONE)


def test_the_cancellation_emailed_the_host_and_cancelled_the_runs(
    summary: dict[str, Any], store: IntegrationStore
) -> None:
    (mail,) = [m for m in summary["emails"] if HOST_EMAIL in m["to"]]
    assert mail["subject"].startswith("Cancelled: ")
    assert "Reason: Grace has a clash." in mail["text"]
    runs = RunStore(store.engine, store.workspace_id)
    web = runs.list(booking_uid=summary["bookings"]["web"])
    by_workflow = {r["workflow"]: r for r in web}
    for name in ("sms-reminder-24h", "thank-you-after-meeting"):
        assert by_workflow[name]["status"] == "cancelled"
        assert by_workflow[name]["cancel_reason"] == "booking cancelled: Grace has a clash"
    assert by_workflow["email-host-on-cancel"]["status"] == "succeeded"
    assert summary["web_reminder_run"] == by_workflow["sms-reminder-24h"]["id"]


def test_the_web_console_is_named_with_a_working_token(
    demo: tuple[Result, Path, float], summary: dict[str, Any], store: IntegrationStore
) -> None:
    web = summary["console"]
    assert web["url"] == summary["urls"]["receiver"] + "/"
    assert web["link"] == f"{web['url']}#token={web['token']}"
    principal = TokenStore(store.engine).verify(web["token"])
    assert principal is not None and principal.workspace_id == store.workspace_id
    assert web["url"] in demo[0].stderr  # the timeline shows where the console is


def test_fresh_refuses_to_wipe_a_directory_calflow_did_not_make(tmp_path: Path) -> None:
    home = tmp_path / "mine"
    home.mkdir()
    (home / "thesis.tex").write_text("precious")
    got = run_calflow(tmp_path, "demo", "--home", str(home), "--fresh")
    assert got.code == 2, str(got)
    assert "calflow did not make (thesis.tex)" in got.err
    assert (home / "thesis.tex").read_text() == "precious"


def test_a_message_that_does_not_arrive_in_time_fails_the_demo_clearly(tmp_path: Path) -> None:
    # Ada's reminder is due ~20 s after the bookings start: a 10 s timeout cannot see it
    home = tmp_path / "demo"
    got = run_calflow(tmp_path, "demo", "--home", str(home), "--timeout", "10", "--json")
    assert got.code == 1, str(got)
    data = got.json
    assert data["ok"] is False
    assert any(m.startswith(f"not seen: the reminder SMS to {ADA_PHONE}") for m in data["missing"])
    assert data["expected"]["api_booking_one_event"] and data["expected"]["cancel_email"]
    assert "✗ the demo failed:" in got.err
