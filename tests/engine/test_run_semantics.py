"""Runs that do what users mean (issue #14): a skipped step goes where success goes, each
reschedule sends its own notice while reminders follow the booking once, and deleting
or disabling a workflow says what happens to its waiting runs.

The engine runs in-process against a sandbox process with its own SMTP sink, so every
SMS and email is counted where it arrives (Twilio's and the sink's message lists).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from calflow.events.model import Person
from calflow.workflows import builtin
from calflow.workflows.lifecycle import delete_workflow, set_enabled
from cli.conftest import run_calflow
from e2e.sandbox_process import SandboxProcess, free_port, sandbox_process

from .conftest import API_KEY, Harness, _harness, booking_event

pytestmark = pytest.mark.slow

PARIS = ZoneInfo("Europe/Paris")


SMTP_PORT = free_port()
"""The SMTP sink's port in this module's sandbox (the default, 2525, is shared)."""


@pytest.fixture(scope="module")
def mail_sandbox() -> Iterator[SandboxProcess]:
    """A sandbox whose SMTP sink listens on a port of its own."""
    with sandbox_process(API_KEY, seed=0, smtp_port=SMTP_PORT) as sb:
        yield sb


@pytest.fixture(scope="module")
def twilio(mail_sandbox: SandboxProcess) -> dict[str, Any]:
    """The sandbox's Twilio account (sid and auth token)."""
    state: dict[str, Any] = httpx.get(f"{mail_sandbox.root}/_sandbox/state", timeout=30).json()
    return dict(state["twilio"])


@pytest.fixture
async def h(
    tmp_path: Path, mail_sandbox: SandboxProcess, twilio: dict[str, Any]
) -> AsyncIterator[Harness]:
    """The engine on SQLite, with the ``sms`` (Twilio) and ``email`` (SMTP) integrations
    the built-in workflows name."""
    async for harness in _harness(tmp_path, f"sqlite:///{tmp_path / 'calflow.db'}", mail_sandbox):
        harness.store.add("twilio", "sms",
                          {"base_url": f"{mail_sandbox.root}/twilio",
                           "account_sid": twilio["account_sid"], "from_number": "+15005550006"},
                          {"auth_token": twilio["auth_token"]})  # fmt: skip
        harness.store.add("email", "email",
                          {"host": "127.0.0.1", "port": str(SMTP_PORT), "security": "none",
                           "from_address": "desk@clinic.example"}, {})  # fmt: skip
        yield harness


def sms_to(sb: SandboxProcess, phone: str) -> list[str]:
    """Bodies of the SMS Twilio's sandbox got for ``phone``, oldest first."""
    resp = httpx.get(f"{sb.root}/_sandbox/twilio/messages", timeout=30)
    resp.raise_for_status()
    return [str(m["body"]) for m in resp.json() if m["to"] == phone]


def mail_to(sb: SandboxProcess, address: str) -> list[str]:
    """Subjects of the mail the SMTP sink got for ``address``."""
    resp = httpx.get(f"{sb.root}/_sandbox/smtp/messages", params={"to": address}, timeout=30)
    resp.raise_for_status()
    return [str(m["subject"]) for m in resp.json()]


def person(tag: str) -> tuple[Person, str]:
    """An attendee with a phone and an email of their own (counted at the sandbox)."""
    phone = f"+336129{zlib.crc32(tag.encode()) % 100000:05d}"
    return Person(name="Ann Lee", email=f"{tag}@example.com", phone=phone,
                  time_zone="Europe/Paris"), phone  # fmt: skip


def get_step(step_id: str, **over: Any) -> dict[str, Any]:
    step = {"id": step_id, "action": "cal_com.GetBooking", "integration": "main",
            "input": {"bookingUid": "{{ booking.uid }}"}}  # fmt: skip
    return {**step, **over}


# --- item 2: skipped means skipped ------------------------------------------------------


async def test_a_skipped_reminder_goes_where_sent_goes_and_sends_no_fallback_email(
    h: Harness, mail_sandbox: SandboxProcess
) -> None:
    h.apply(builtin.load("sms-reminder-24h"))  # on: {sent: end, invalid_number: email, …}
    ann, phone = person("skip-a")
    start = datetime.now(UTC) + timedelta(minutes=10)  # booked 10 min ahead: 24 h is past
    h.publish(booking_event(booking_uid="uid-skip-a", attendees=(ann,), start=start,
                            end=start + timedelta(minutes=30)))  # fmt: skip
    (run,) = await h.finished(1)
    shown = h.run(run["id"])
    assert shown["status"] == "succeeded"
    (step,) = shown["steps"]  # the email step never ran
    assert (step["step"], step["status"], step["port"]) == ("sms", "skipped", "skipped")
    assert step["output"] == {"next": "end"}  # where `sent` routes
    why = step["error"]
    due = start - timedelta(hours=24)
    assert why["rule"] == "skip_if_past" and why["grace_s"] == 60
    assert abs(datetime.fromisoformat(why["due_at"]) - due) < timedelta(seconds=1)
    assert datetime.fromisoformat(why["learned_at"]) > due + timedelta(hours=23)
    assert "before calflow learned of the booking" in why["reason"]
    assert "more than 60 s past due" in why["reason"]
    assert datetime.fromisoformat(step["due_at"]) == datetime.fromisoformat(why["due_at"])
    assert sms_to(mail_sandbox, phone) == [] and mail_to(mail_sandbox, ann.email or "") == []

    shown_cli = run_calflow(h.engine.settings.home, "runs", "show", run["id"], "--json")
    assert shown_cli.code == 0, str(shown_cli)
    assert shown_cli.json["steps"][0]["error"]["rule"] == "skip_if_past"


async def test_a_skipped_route_takes_the_run_where_it_says(
    h: Harness, mail_sandbox: SandboxProcess
) -> None:
    h.apply({
        "name": "reminder-or-note",
        "trigger": {"kinds": ["created"]},
        "steps": [
            {"id": "sms", "action": "twilio.SendSms", "integration": "sms",
             "at": {"before_start": "24h"},
             "input": {"to": "{{ attendee.phone }}", "body": "Tomorrow!"},
             "on": {"sent": "end", "error": "fallback", "skipped": "note"}},
            {"id": "fallback", "action": "email.SendEmail", "integration": "email",
             "input": {"to": "{{ attendee.email }}", "subject": "Reminder: tomorrow",
                       "text": "See you tomorrow."}},
            {"id": "note", "action": "email.SendEmail", "integration": "email",
             "input": {"to": "{{ attendee.email }}", "subject": "Booked for soon",
                       "text": "{{ steps.sms.port }}"}},
        ],
    })  # fmt: skip
    ann, phone = person("skip-b")
    start = datetime.now(UTC) + timedelta(hours=2)
    h.publish(booking_event(booking_uid="uid-skip-b", attendees=(ann,), start=start,
                            end=start + timedelta(minutes=30)))  # fmt: skip
    (run,) = await h.finished(1)
    steps = [(s["step"], s["status"], s["port"]) for s in h.run(run["id"])["steps"]]
    assert steps == [("sms", "skipped", "skipped"), ("note", "succeeded", "sent")]
    assert mail_to(mail_sandbox, ann.email or "") == ["Booked for soon"]
    assert sms_to(mail_sandbox, phone) == []


# --- item 7: reschedules ----------------------------------------------------------------


def _on_paris(at: datetime) -> str:
    return at.astimezone(PARIS).strftime("%a %d %b at %H:%M")


async def test_each_reschedule_sends_its_own_notice_and_reminders_follow_once(
    h: Harness, mail_sandbox: SandboxProcess
) -> None:
    h.apply(builtin.load("rescheduled-notice"))
    h.apply({"name": "remind", "trigger": {"kinds": ["created", "rescheduled"]},
             "steps": [get_step("remind", at={"before_start": "1h"})]})  # fmt: skip
    two = [get_step("remind", at={"before_start": "1h"}), get_step("after")]
    h.apply({"name": "moved-remind", "trigger": {"kinds": ["rescheduled"]}, "steps": two})
    ann, phone = person("moves")
    s0 = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    s1, s2 = s0 + timedelta(days=1), s0 + timedelta(days=2)
    now = datetime.now(UTC)

    def event(kind: str, uid: str, start: datetime, previous: str | None, n: int) -> Any:
        return booking_event(kind, booking_uid=uid, previous_uid=previous, attendees=(ann,),
                             start=start, end=start + timedelta(minutes=30),
                             occurred_at=now + timedelta(seconds=n))  # fmt: skip

    h.publish(event("created", "mv-0", s0, None, 0))
    await h.until(lambda: h.runs(workflow="remind", status="waiting"), what="the reminder")
    # two quick reschedules, delivered together (one dispatch batch), Cal.com style
    h.inbox.publish_many([(event("rescheduled", "mv-1", s1, "mv-0", 1), None),
                          (event("rescheduled", "mv-2", s2, "mv-1", 2), None)])  # fmt: skip

    def settled() -> bool:
        notices = h.runs(workflow="rescheduled-notice", status="succeeded")
        moved = h.runs(workflow="moved-remind")
        return len(notices) == 2 and sorted(r["status"] for r in moved) == [
            "succeeded",
            "waiting",
        ]

    await h.until(settled, what="two notices sent and the moved reminders settled")
    assert sorted(sms_to(mail_sandbox, phone)) == sorted(
        f"Intro call moved to {_on_paris(s)}." for s in (s1, s2)
    )  # two notices, each with its own new time
    (reminder,) = h.runs(workflow="remind")  # the creation's run moved: nothing new started
    assert reminder["status"] == "waiting" and reminder["booking_uid"] == "mv-2"
    assert datetime.fromisoformat(reminder["next_due_at"]) == s2 - timedelta(hours=1)

    # a reschedule's own run keeps its times: once the booking moved on, its reminder is
    # skipped (the later reschedule's run has it at the new time) and it goes on
    by_status = {r["status"]: r for r in h.runs(workflow="moved-remind")}
    later = by_status["waiting"]
    assert datetime.fromisoformat(later["next_due_at"]) == s2 - timedelta(hours=1)
    earlier = h.run(by_status["succeeded"]["id"])["steps"]
    assert [(s["step"], s["status"]) for s in earlier] == [("remind", "skipped"),
                                                           ("after", "succeeded")]  # fmt: skip
    assert earlier[0]["error"]["rule"] == "moved_again"
    assert datetime.fromisoformat(earlier[0]["error"]["booking_start"]) == s2


async def test_a_cancel_after_a_reschedule_ends_its_pending_runs(h: Harness) -> None:
    h.apply({"name": "moved-remind", "trigger": {"kinds": ["rescheduled"]},
             "steps": [get_step("remind", at={"before_start": "1h"})]})  # fmt: skip
    start = datetime.now(UTC) + timedelta(days=3)
    h.publish(booking_event("rescheduled", booking_uid="cx-1", previous_uid="cx-0",
                            start=start, end=start + timedelta(minutes=30)))  # fmt: skip
    await h.until(lambda: h.runs(status="waiting"), what="the moved reminder to wait")
    h.publish(booking_event("cancelled", booking_uid="cx-1", reason="Sick",
                            occurred_at=datetime.now(UTC) + timedelta(seconds=5)))  # fmt: skip
    (run,) = await h.finished(1)
    assert run["status"] == "cancelled" and "Sick" in run["cancel_reason"]


# --- item 7: deleting and disabling a workflow ------------------------------------------


async def test_disable_leaves_runs_waiting_and_delete_cancels_or_keeps_them(h: Harness) -> None:
    svc = h.engine.services
    h.apply({"name": "remind", "trigger": {"kinds": ["created"]},
             "steps": [get_step("remind", at={"before_start": "1h"})]})  # fmt: skip
    h.apply({"name": "soon", "trigger": {"kinds": ["created"]},
             "steps": [get_step("soon", at={"before_start": "2d"})]})  # fmt: skip
    start = datetime.now(UTC) + timedelta(days=2, seconds=4)  # `soon` is due in 4 s
    h.publish(booking_event(booking_uid="del-1", start=start, end=start + timedelta(hours=1)))
    await h.until(lambda: len(h.runs(status="waiting")) == 2, what="both runs to wait")

    off = set_enabled(svc.workflows, svc.runs, "remind", False)
    assert (off["enabled"], off["runs_waiting"]) == (False, 1)
    (waiting,) = h.runs(workflow="remind")
    assert waiting["status"] == "waiting"  # disabling stops new runs only

    gone = delete_workflow(svc.workflows, svc.runs, "remind")
    assert (gone["runs_cancelled"], gone["runs_kept"]) == (1, 0)
    kept = delete_workflow(svc.workflows, svc.runs, "soon", keep_runs=True)
    assert (kept["runs_cancelled"], kept["runs_kept"]) == (0, 1)

    await h.until(lambda: h.runs(workflow="soon", status="succeeded"), what="the kept run")
    cancelled = h.run(waiting["id"])
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("cancelled", "workflow deleted")
    assert [(s["step"], s["status"]) for s in cancelled["steps"]] == [("remind", "cancelled")]
    later = h.publish(booking_event(booking_uid="del-2"))  # neither workflow starts any more
    await h.until(lambda: h.inbox.get(later.event_id)["dispatched"], what="its dispatch")
    await asyncio.sleep(0.5)
    assert len(h.runs()) == 2
