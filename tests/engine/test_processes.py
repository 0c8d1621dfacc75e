"""Reliability with real processes: kill -9 mid-wait and after a 2xx; two workers on Postgres."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import text

from calflow.db.engine import reset_engines
from calflow.events.inbox import Inbox
from calflow.integrations import IntegrationStore
from calflow.settings import Settings
from calflow.workflows.runs import RunStore
from calflow.workflows.store import WorkflowStore
from e2e.sandbox_process import SandboxProcess, child_env, free_port

from .conftest import API_KEY, booking_event

pytestmark = pytest.mark.slow

T = TypeVar("T")


@contextmanager
def calflow_process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """``calflow <args>`` as a child process; killed (if still alive) on exit."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "calflow.cli.main", *args],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=child_env(**env),
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.returncode not in (0, -signal.SIGKILL, 130, -signal.SIGINT):
                log.seek(0)
                print(log.read().decode(errors="replace")[-4000:])


def kill9(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def poll(check: Callable[[], T | None], wait_s: float = 30.0, what: str = "condition") -> T:
    deadline = time.monotonic() + wait_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _setup(home: Path, url: str, sandbox: SandboxProcess, definition: dict[str, Any]) -> Settings:
    settings = Settings(home=home, database_url=url)
    store = IntegrationStore.default(settings)
    store.add("cal_com", "main", {"base_url": sandbox.calcom},
              {"api_key": API_KEY, "webhook_secret": "whsec_proc"})  # fmt: skip
    WorkflowStore(store.engine).apply(definition)
    return settings


def _runs(settings: Settings) -> RunStore:
    return RunStore(IntegrationStore.default(settings).engine)


REMINDER = {
    "name": "reminder",
    "trigger": {"kinds": ["created"]},
    "steps": [{"id": "remind", "action": "cal_com.GetBooking", "integration": "main",
               "input": {"bookingUid": "{{ booking.uid }}"}, "at": {"before_start": "3594s"}}],
}  # fmt: skip


def test_a_worker_killed_mid_wait_sends_the_reminder_once_after_restart(
    tmp_path: Path, sandbox: SandboxProcess
) -> None:
    url = f"sqlite:///{tmp_path / 'calflow.db'}"
    settings = _setup(tmp_path, url, sandbox, REMINDER)
    env = {"CALFLOW_HOME": str(tmp_path)}
    start = datetime.now(UTC) + timedelta(hours=1)
    Inbox(IntegrationStore.default(settings).engine).publish(
        booking_event(start=start, end=start + timedelta(minutes=30))
    )
    due = start - timedelta(seconds=3594)
    runs = _runs(settings)
    with calflow_process(["worker", "--id", "w1"], env) as first:
        run = poll(lambda: next(iter(runs.list(status="waiting")), None), what="a waiting run")
        kill9(first)
    assert datetime.now(UTC) < due, "the worker was killed before the reminder was due"
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.5)
    assert runs.get(run["id"])["steps"] == []  # nobody sent it while no worker ran
    with calflow_process(["worker", "--id", "w1"], env):
        done = poll(lambda: runs.get(run["id"])["status"] == "succeeded" or None,
                    what="the recovered reminder")  # fmt: skip
        assert done
    steps = runs.get(run["id"])["steps"]
    assert [(s["step"], s["status"]) for s in steps] == [("remind", "succeeded")]
    assert datetime.fromisoformat(steps[0]["started_at"]) >= due
    reset_engines()


def test_an_accepted_delivery_survives_a_kill_right_after_the_2xx(
    tmp_path: Path, sandbox: SandboxProcess
) -> None:
    definition = {**REMINDER, "steps": [{**REMINDER["steps"][0], "at": "immediately"}]}  # type: ignore[dict-item]
    url = f"sqlite:///{tmp_path / 'calflow.db'}"
    settings = _setup(tmp_path, url, sandbox, definition)
    integration = IntegrationStore.default(settings).get("main")
    body = json.dumps({
        "triggerEvent": "BOOKING_CREATED", "createdAt": datetime.now(UTC).isoformat(),
        "payload": {"uid": "uid-kill", "title": "Call", "startTime": "2030-01-07T09:00:00Z",
                    "endTime": "2030-01-07T09:30:00Z", "status": "ACCEPTED",
                    "attendees": [{"name": "Ann", "email": "ann@example.com",
                                   "timeZone": "UTC"}]},
    }).encode()  # fmt: skip
    sig = hmac.new(b"whsec_proc", body, hashlib.sha256).hexdigest()
    port = free_port()
    env = {"CALFLOW_HOME": str(tmp_path)}
    # the receiver alone: the engine is not running when the delivery is accepted
    with calflow_process(["serve", "--port", str(port), "--no-worker"], env) as server:
        poll(lambda: _healthy(port), what="the server")
        resp = httpx.post(f"http://127.0.0.1:{port}/hooks/{integration.id}", content=body,
                          headers={"X-Cal-Signature-256": sig,
                                   "Content-Type": "application/json"})  # fmt: skip
        assert resp.status_code == 200, resp.text
        kill9(server)
    runs = _runs(settings)
    assert runs.list() == []
    with calflow_process(["serve", "--port", str(port)], env):
        run = poll(lambda: next(iter(runs.list(status="succeeded")), None), what="the run")
    assert run["booking_uid"] == "uid-kill"
    reset_engines()


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.postgres
def test_two_workers_on_postgres_process_every_event_exactly_once(
    tmp_path: Path, sandbox: SandboxProcess, isolated_pg_url: str
) -> None:
    definition = {**REMINDER, "steps": [{**REMINDER["steps"][0], "at": "immediately"}]}  # type: ignore[dict-item]
    settings = _setup(tmp_path, isolated_pg_url, sandbox, definition)
    env = {"CALFLOW_HOME": str(tmp_path), "CALFLOW_DATABASE_URL": isolated_pg_url}
    runs = _runs(settings)
    inbox = Inbox(IntegrationStore.default(settings).engine)
    count = 40
    with calflow_process(["worker", "--id", "w1"], env), \
            calflow_process(["worker", "--id", "w2"], env):  # fmt: skip
        for n in range(count):
            event = booking_event(booking_uid=f"uid-many-{n}")
            inbox.publish(event)
            if n % 4 == 0:
                inbox.publish(event.with_source("replay"))  # duplicates start nothing
        poll(lambda: len(runs.list(status="succeeded", limit=1000)) == count or None,
             wait_s=90, what=f"{count} succeeded runs")  # fmt: skip
        time.sleep(1.0)
    all_runs = runs.list(limit=1000)
    assert len(all_runs) == count
    for run in all_runs:
        steps = runs.get(run["id"])["steps"]
        assert [(s["step"], s["status"]) for s in steps] == [("remind", "succeeded")]
    integration_id = IntegrationStore.default(settings).get("main").id
    engine = IntegrationStore.default(settings).engine
    with engine.connect() as conn:
        executors = dict(conn.execute(text(
            "SELECT executor_id, count(*) FROM dbos.workflow_status"
            " WHERE name = 'calflow.batch' GROUP BY executor_id"
        )).tuples().all())  # fmt: skip
        counted = conn.execute(
            text("SELECT count FROM rate_windows WHERE key = :k"), {"k": f"int:{integration_id}"}
        ).scalar()
    assert set(executors) <= {"w1", "w2"} and executors
    assert {run["worker"] for run in all_runs} <= {"w1", "w2"}
    # every Cal.com call was counted against the integration's shared rate limit
    assert counted is not None and 1 <= counted <= count
    print("runs per worker:", executors, file=sys.stderr)
    reset_engines()
    os.environ.pop("CALFLOW_DATABASE_URL", None)
