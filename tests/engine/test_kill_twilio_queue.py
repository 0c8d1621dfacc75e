"""The kill test against Twilio as it is: the sender sends one segment per second
(``calflow sandbox --twilio-mps 1``) and is already busy with a backlog, so every SMS is
still ``queued``, with no ``date_sent``, when a worker killed mid-call comes back and
asks Twilio whether its call took effect. kill -9 the worker four times during 1,000
reminders; every reminder is created at Twilio exactly once (counted per recipient),
none lost; then the sandbox clock is moved on and the queue drains in order, one
message a second."""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from calflow.db.engine import reset_engines
from calflow.db.models import RunStepRow
from calflow.events.inbox import Inbox
from calflow.events.model import BookingEvent, Person
from calflow.integrations import IntegrationStore
from calflow.settings import Settings
from calflow.workflows.runs import RunStore
from calflow.workflows.store import WorkflowStore
from e2e.sandbox_process import SandboxProcess, sandbox_process

from .conftest import API_KEY, booking_event
from .test_processes import calflow_process, kill9, poll

pytestmark = pytest.mark.slow

REMINDERS = int(os.environ.get("CALFLOW_KILL_EVENTS", "1000"))
KILLS = 4
BACKLOG = 100
FROM = "+15005550006"

FLOW = {
    "name": "queued-reminder",
    "trigger": {"kinds": ["created"]},
    "steps": [
        {"id": "remind", "action": "twilio.SendSms", "integration": "sms",
         "at": {"before_start": "10s"}, "retry": {"max_attempts": 8, "backoff": "0.5s"},
         "input": {"to": "{{ attendee.phone }}", "body": "reminder {{ booking.uid }}"}},
    ],
}  # fmt: skip


@pytest.fixture
def slow_sender() -> Iterator[SandboxProcess]:
    """A sandbox whose Twilio senders send one segment per second (a US long code), and
    whose API answers 100 ms after it took the message (a kill then often cuts a call
    whose SMS exists)."""
    with sandbox_process(API_KEY, twilio_mps=1, latency_ms=100) as sb:
        yield sb


def _messages(sandbox: SandboxProcess) -> list[dict[str, Any]]:
    resp = httpx.get(f"{sandbox.root}/_sandbox/twilio/messages", timeout=60)
    resp.raise_for_status()
    found: list[dict[str, Any]] = resp.json()
    return found


def _bookings(start_at: datetime, tag: str) -> list[BookingEvent]:
    """One booking per recipient, starting 20 ms apart from ``start_at``."""
    out = []
    for n in range(REMINDERS):
        start = start_at + timedelta(milliseconds=20 * n)
        out.append(replace(booking_event(), booking_uid=f"{tag}-{n}", start=start,
                           end=start + timedelta(seconds=2),
                           attendees=(Person(name=f"P {n}", email=f"p{n}@example.com",
                                             phone=f"+33614{n:06d}"),)))  # fmt: skip
    return out


def _reconciled(engine: Engine) -> list[dict[str, Any]]:
    """The outputs of the steps that found their cut-off call's message at Twilio."""
    with engine.connect() as conn:
        outputs = conn.execute(select(RunStepRow.output).where(RunStepRow.status == "succeeded"))
        data = [(output or {}).get("data") or {} for output in outputs.scalars()]
    return [d for d in data if d.get("reconciled")]


def _backlog(sandbox: SandboxProcess, twilio: dict[str, Any]) -> float:
    """Queue long messages from the reminders' sender; returns the seconds they hold it."""
    url = f"{sandbox.root}/twilio/2010-04-01/Accounts/{twilio['account_sid']}/Messages.json"
    auth = (twilio["account_sid"], twilio["auth_token"])
    held = 0.0
    with httpx.Client(auth=auth, timeout=30) as http:
        for _ in range(BACKLOG):
            resp = http.post(url, data={"To": "+33699999999", "From": FROM, "Body": "x" * 1600})
            assert resp.status_code == 201, resp.text
            held += int(resp.json()["num_segments"])
    return held


def _sending(sandbox: SandboxProcess, before: int) -> int | None:
    """How many messages Twilio has, once the worker began sending (else ``None``)."""
    count = len(_messages(sandbox))
    return count if count > before else None


def _queued_kill_test(home: Path, url: str, sandbox: SandboxProcess) -> None:
    twilio = httpx.get(f"{sandbox.root}/_sandbox/state", timeout=30).json()["twilio"]
    assert twilio["mps"] == 1
    settings = Settings(home=home, database_url=url)
    store = IntegrationStore.default(settings)
    store.add("twilio", "sms",
              {"base_url": f"{sandbox.root}/twilio", "account_sid": twilio["account_sid"],
               "from_number": FROM},
              {"auth_token": twilio["auth_token"]})  # fmt: skip
    WorkflowStore(store.engine).apply(FLOW)
    inbox, runs = Inbox(store.engine), RunStore(store.engine)
    env = {"CALFLOW_HOME": str(home)}
    if not url.startswith("sqlite"):
        env["CALFLOW_DATABASE_URL"] = url
    rng = random.Random(14)
    tag = f"q{rng.randrange(10**6)}{'sq' if url.startswith('sqlite') else 'pg'}"
    # the sender is busy for ~20 min before the first reminder: every one waits queued
    held = _backlog(sandbox, twilio)
    # the reminders fall due over 20 s from 3 s on (or at once, if the worker starts late);
    # each worker is killed a moment after its first SMS, so the kills land mid-send
    events = _bookings(datetime.now(UTC) + timedelta(seconds=13), tag)
    chunk = REMINDERS // KILLS
    for k in range(KILLS):
        upto = None if k == KILLS - 1 else (k + 1) * chunk
        inbox.publish_many([(e, None) for e in events[k * chunk : upto]])
        before = len(_messages(sandbox))
        with calflow_process(["worker", "--id", "w1"], env) as proc:
            poll(partial(_sending, sandbox, before), wait_s=60, what="the worker to send")
            time.sleep(rng.uniform(0.2, 2.0))
            kill9(proc)
    with calflow_process(["worker", "--id", "w1"], env):
        poll(lambda: len(runs.list(status="succeeded", limit=REMINDERS + 10)) >= REMINDERS
             or None, wait_s=120, what=f"{REMINDERS} runs to succeed")  # fmt: skip

    messages = [m for m in _messages(sandbox) if m["body"].startswith(f"reminder {tag}-")]
    per_recipient = Counter(m["to"] for m in messages)
    expected = {e.attendees[0].phone for e in events}
    assert not expected - set(per_recipient), "reminders never created at Twilio"
    doubled = {to: n for to, n in per_recipient.items() if n > 1}
    assert not doubled, f"{len(doubled)} recipients got the reminder twice: {list(doubled)[:5]}"
    assert set(per_recipient) == expected and len(messages) == REMINDERS
    assert runs.list(status="failed", limit=10) == []
    assert {m["status"] for m in messages} == {"queued"}
    # the calls the kills cut off after Twilio took them were found, still queued
    found = _reconciled(store.engine)
    assert found, "no kill cut a call off after Twilio had taken the message"
    assert {d["status"] for d in found} == {"queued"}

    # move the sandbox clock past the queue: the reminders leave one a second, in order
    offset = held + REMINDERS + 60
    httpx.post(f"{sandbox.root}/_sandbox/clock", json={"offset_s": offset}, timeout=30)
    drained = [m for m in _messages(sandbox) if m["body"].startswith(f"reminder {tag}-")]
    assert {m["status"] for m in drained} == {"delivered"}
    sent = [parsedate_to_datetime(m["date_sent"]) for m in drained]
    assert [(b - a).total_seconds() for a, b in pairwise(sent)] == [1.0] * (REMINDERS - 1)
    reset_engines()


def test_kill_9_with_a_queuing_sender_on_sqlite_sends_each_reminder_once(
    tmp_path: Path, slow_sender: SandboxProcess
) -> None:
    _queued_kill_test(tmp_path, f"sqlite:///{tmp_path / 'calflow.db'}", slow_sender)


@pytest.mark.postgres
def test_kill_9_with_a_queuing_sender_on_postgres_sends_each_reminder_once(
    tmp_path: Path, slow_sender: SandboxProcess, isolated_pg_url: str
) -> None:
    _queued_kill_test(tmp_path, isolated_pg_url, slow_sender)
