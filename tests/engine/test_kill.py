"""The kill test: kill -9 the engine at random moments during 1,000 events with a reminder
and a follow-up each, restart it every time, and balance the ledger at the Twilio sandbox:
every due SMS sent exactly once, none lost, none duplicated."""

from __future__ import annotations

import os
import random
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
from .test_processes import calflow_process, kill9, poll

pytestmark = pytest.mark.slow

EVENTS = int(os.environ.get("CALFLOW_KILL_EVENTS", "1000"))
KILLS = 4

FLOW = {
    "name": "remind-and-follow-up",
    "trigger": {"kinds": ["created"]},
    "steps": [
        {"id": "remind", "action": "twilio.SendSms", "integration": "sms",
         "at": {"before_start": "10s"}, "retry": {"max_attempts": 8, "backoff": "0.5s"},
         "input": {"to": "{{ attendee.phone }}", "body": "reminder {{ booking.uid }}"}},
        {"id": "follow", "action": "twilio.SendSms", "integration": "sms",
         "at": {"after_end": "1s"}, "retry": {"max_attempts": 8, "backoff": "0.5s"},
         "input": {"to": "{{ attendee.phone }}", "body": "follow-up {{ booking.uid }}"}},
    ],
}  # fmt: skip


def _twilio(sandbox: SandboxProcess) -> dict[str, Any]:
    state: dict[str, Any] = httpx.get(f"{sandbox.root}/_sandbox/state", timeout=30).json()
    return dict(state["twilio"])


def _sent(sandbox: SandboxProcess) -> Counter[str]:
    resp = httpx.get(f"{sandbox.root}/_sandbox/twilio/messages", timeout=60)
    resp.raise_for_status()
    return Counter(str(m["body"]) for m in resp.json())


def _events(start_at: datetime, first: int, count: int, tag: str) -> list[Any]:
    out = []
    for n in range(first, first + count):
        start = start_at + timedelta(milliseconds=30 * n)
        phone = f"+336{12 if tag.endswith('sq') else 13}34{n:04d}"
        out.append(replace(booking_event(), booking_uid=f"{tag}-{n}", start=start,
                           end=start + timedelta(seconds=2),
                           attendees=(Person(name=f"P {n}", email=f"p{n}@example.com",
                                             phone=phone),)))  # fmt: skip
    return out


def _kill_test(home: Path, url: str, sandbox: SandboxProcess) -> None:
    twilio = _twilio(sandbox)
    settings = Settings(home=home, database_url=url)
    store = IntegrationStore.default(settings)
    store.add("twilio", "sms",
              {"base_url": f"{sandbox.root}/twilio", "account_sid": twilio["account_sid"],
               "from_number": "+15005550006"},
              {"auth_token": twilio["auth_token"]})  # fmt: skip
    WorkflowStore(store.engine).apply(FLOW)
    before = _sent(sandbox)
    inbox = Inbox(store.engine)
    runs = RunStore(store.engine)
    env = {"CALFLOW_HOME": str(home)}
    if not url.startswith("sqlite"):
        env["CALFLOW_DATABASE_URL"] = url
    rng = random.Random(4)
    tag = f"kill{rng.randrange(10**6)}{'sq' if url.startswith('sqlite') else 'pg'}"
    start_at = datetime.now(UTC) + timedelta(seconds=15)
    chunk = EVENTS // KILLS
    for k in range(KILLS):
        count = chunk if k < KILLS - 1 else EVENTS - chunk * (KILLS - 1)
        batch = _events(start_at, k * chunk, count, tag)
        inbox.publish_many([(e, None) for e in batch])
        with calflow_process(["worker", "--id", "w1"], env) as proc:
            time.sleep(rng.uniform(3.0, 8.0))
            kill9(proc)
    with calflow_process(["worker", "--id", "w1"], env):
        poll(lambda: len(runs.list(status="succeeded", limit=EVENTS + 10)) >= EVENTS or None,
             wait_s=300, what=f"{EVENTS} runs to succeed")  # fmt: skip
    sent = _sent(sandbox) - before
    expected = {f"{kind} {tag}-{n}" for n in range(EVENTS) for kind in ("reminder", "follow-up")}
    missing = expected - set(sent)
    doubled = {body: c for body, c in sent.items() if c > 1}
    if missing:
        uid = sorted(missing)[0].split()[-1]
        for run in runs.list(booking_uid=uid):
            print("DIAG", run["created_at"], runs.get(run["id"])["steps"])
    assert not missing, f"{len(missing)} due SMS never sent, e.g. {sorted(missing)[:5]}"
    assert not doubled, f"{len(doubled)} SMS sent more than once, e.g. {list(doubled.items())[:5]}"
    assert set(sent) == expected
    assert runs.list(status="failed", limit=10) == []
    reset_engines()


def test_kill_9_during_1000_events_on_sqlite_balances_the_ledger(
    tmp_path: Path, sandbox: SandboxProcess
) -> None:
    _kill_test(tmp_path, f"sqlite:///{tmp_path / 'calflow.db'}", sandbox)


@pytest.mark.postgres
def test_kill_9_during_1000_events_on_postgres_balances_the_ledger(
    tmp_path: Path, sandbox: SandboxProcess, isolated_pg_url: str
) -> None:
    _kill_test(tmp_path, isolated_pg_url, sandbox)
