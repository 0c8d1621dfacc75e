"""Provider faults and fast-moving bookings, with real processes (sandbox, calflow worker)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from calflow.db.engine import reset_engines
from calflow.events.inbox import Inbox
from calflow.events.model import Person
from calflow.integrations import IntegrationStore
from calflow.settings import Settings
from calflow.workflows.runs import RunStore
from calflow.workflows.store import WorkflowStore
from e2e.sandbox_process import SandboxProcess

from .conftest import booking_event
from .test_processes import calflow_process, poll

pytestmark = pytest.mark.slow


def _setup(home: Path, sandbox: SandboxProcess, flow: dict[str, Any]) -> tuple[Inbox, RunStore]:
    twilio = httpx.get(f"{sandbox.root}/_sandbox/state", timeout=30).json()["twilio"]
    store = IntegrationStore.default(Settings(home=home))
    store.add("twilio", "sms",
              {"base_url": f"{sandbox.root}/twilio", "account_sid": twilio["account_sid"],
               "from_number": "+15005550006"},
              {"auth_token": twilio["auth_token"]})  # fmt: skip
    WorkflowStore(store.engine).apply(flow)
    return Inbox(store.engine), RunStore(store.engine)


def _sent(sandbox: SandboxProcess) -> list[dict[str, Any]]:
    resp = httpx.get(f"{sandbox.root}/_sandbox/twilio/messages", timeout=60)
    resp.raise_for_status()
    return list(resp.json())


def _sms_flow(at: Any, body: str, attempts: int = 6) -> dict[str, Any]:
    return {
        "name": "sms",
        "trigger": {"kinds": ["created"]},
        "steps": [{"id": "sms", "action": "twilio.SendSms", "integration": "sms", "at": at,
                   "retry": {"max_attempts": attempts, "backoff": "0.2s", "max_backoff": "1s"},
                   "input": {"to": "{{ attendee.phone }}", "body": body}}],
    }  # fmt: skip


def _with_phone(uid: str, phone: str, **over: Any) -> Any:
    person = Person(name="Ann", email=f"{uid}@example.com", phone=phone)
    return replace(booking_event(), booking_uid=uid, attendees=(person,), **over)


def test_provider_faults_end_sent_once_or_visibly_dead_lettered(
    tmp_path: Path, sandbox: SandboxProcess
) -> None:
    inbox, runs = _setup(tmp_path, sandbox, _sms_flow("immediately", "fault {{ booking.uid }}"))
    events = [_with_phone(f"flt-{n}", f"+3361299{n:04d}") for n in range(40)]
    events += [_with_phone(f"flt-429-{n}", "+15005550429") for n in range(4)]  # always 429
    httpx.post(f"{sandbox.root}/_sandbox/faults", json={"fail_rate": 0.35}, timeout=10)
    try:
        inbox.publish_many([(e, None) for e in events])
        with calflow_process(["worker", "--id", "faults"], {"CALFLOW_HOME": str(tmp_path)}):
            poll(lambda: sum(r["status"] in ("succeeded", "failed") for r in
                             runs.list(limit=100)) == len(events) or None,
                 wait_s=120, what="every run to end")  # fmt: skip
    finally:
        httpx.post(f"{sandbox.root}/_sandbox/faults", json={"fail_rate": 0.0}, timeout=10)
    sent = Counter(m["body"] for m in _sent(sandbox) if str(m["body"]).startswith("fault flt-"))
    by_uid = {r["booking_uid"]: r for r in runs.list(limit=100)}
    assert len(by_uid) == len(events)
    for uid, run in by_uid.items():
        body = f"fault {uid}"
        if run["status"] == "succeeded":
            assert sent[body] == 1, (uid, sent[body])
        else:  # not silently lost: dead-lettered with the reason
            assert run["dead"] and run["error"]["code"], run
            assert sent[body] == 0 or run["error"]["code"] == "MAYBE_SENT", run
    for n in range(4):  # a number Twilio always answers 429 for: retried, then dead-lettered
        run = by_uid[f"flt-429-{n}"]
        codes = {(s["error"] or {}).get("code") for s in runs.get(run["id"])["steps"]}
        assert run["status"] == "failed" and run["dead"], (run, codes)
        # 429 every time, unless an injected timeout (MAYBE_SENT: never retried) came first
        assert "RATE_LIMIT" in codes or run["error"]["code"] == "MAYBE_SENT", (run, codes)
    retried = [s for r in by_uid.values() for s in runs.get(r["id"])["steps"] if s["attempt"] > 1]
    assert retried, "the 5xx faults should have caused retries"
    assert sum(r["status"] == "succeeded" for r in by_uid.values()) >= 30
    reset_engines()


def test_a_booking_moved_twice_then_cancelled_never_gets_a_stale_reminder(
    tmp_path: Path, sandbox: SandboxProcess
) -> None:
    flow = _sms_flow({"before_start": "10s"}, "moving {{ booking.uid }} {{ booking.start | iso }}")
    inbox, runs = _setup(tmp_path, sandbox, flow)
    now = datetime.now(UTC)
    starts = [now + timedelta(seconds=s) for s in (22, 27, 32)]
    env = {"CALFLOW_HOME": str(tmp_path)}
    with calflow_process(["worker", "--id", "moves"], env):
        for booking, phone in (("mv-a", "+33612980001"), ("mv-b", "+33612980002")):
            end = starts[0] + timedelta(minutes=5)
            inbox.publish(_with_phone(booking, phone, start=starts[0], end=end, occurred_at=now))
        for n, start in enumerate(starts[1:], 1):
            time.sleep(2)
            for booking, phone in (("mv-a", "+33612980001"), ("mv-b", "+33612980002")):
                previous = booking if n == 1 else f"{booking}-r{n - 1}"
                inbox.publish(_with_phone(f"{booking}-r{n}", phone, kind="rescheduled",
                                          previous_uid=previous, start=start,
                                          end=start + timedelta(minutes=5),
                                          occurred_at=now + timedelta(seconds=n)))  # fmt: skip
        time.sleep(2)
        inbox.publish(_with_phone("mv-a-r2", "+33612980001", kind="cancelled",
                                  start=starts[2], reason="changed my mind",
                                  occurred_at=now + timedelta(seconds=5)))  # fmt: skip
        poll(lambda: any(r["status"] == "succeeded" for r in runs.list()) or None,
             wait_s=60, what="the moved reminder")  # fmt: skip
        time.sleep(3)
    sent = [m for m in _sent(sandbox) if str(m["body"]).startswith("moving mv-")]
    assert [m["to"] for m in sent] == ["+33612980002"]  # nothing at all for the cancelled one
    assert sent[0]["body"].startswith("moving mv-b-r2 ")  # the last time, nothing stale
    assert starts[2].isoformat()[:19] in sent[0]["body"]
    by_uid = {r["booking_uid"]: r for r in runs.list()}
    assert by_uid["mv-a-r2"]["status"] == "cancelled"
    assert "changed my mind" in by_uid["mv-a-r2"]["cancel_reason"]
    assert len(runs.list()) == 2  # each booking kept its one run through both moves
    reset_engines()
