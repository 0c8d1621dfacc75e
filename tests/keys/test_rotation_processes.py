"""Rotating the encryption key while two real ``calflow worker`` processes run on
PostgreSQL and a stream of bookings keeps them sending SMS through the Twilio sandbox
(each send decrypts the Twilio auth token): no run fails, every SMS goes out once.

Once with the key file both workers read (``keys add``, ``rotate``, ``retire`` and
nothing else), once with ``CALFLOW_SECRET_KEYS`` (rolling restarts with both keys, then
``rotate``, ``retire``, rolling restarts with the new key alone).
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from sqlalchemy import Engine, select

from calflow.db import IntegrationRow
from calflow.db.engine import reset_engines
from calflow.events.inbox import Inbox
from calflow.events.model import Person
from calflow.integrations import IntegrationStore
from calflow.keys import registry
from calflow.keys.keyfile import KEY_FILE_NAME, read_key_file
from calflow.keys.ring import key_id
from calflow.settings import Settings
from calflow.vault import Vault
from calflow.workflows.runs import RunStore
from calflow.workflows.store import WorkflowStore
from db_fixtures import clean_calflow_env, isolated_pg_url
from e2e.sandbox_process import SandboxProcess, child_env, sandbox_process
from engine.conftest import booking_event
from engine.test_processes import poll

__all__ = ["clean_calflow_env", "isolated_pg_url"]

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

BEAT_S = "1"
FLOW = {
    "name": "sms-now",
    "trigger": {"kinds": ["created"]},
    "steps": [{"id": "sms", "action": "twilio.SendSms", "integration": "sms",
               "at": "immediately",
               "input": {"to": "{{ attendee.phone }}", "body": "keys {{ booking.uid }}"}}],
}  # fmt: skip


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    with sandbox_process("cal_live_keys_e2e", rate_limit=0) as sb:
        yield sb


class Worker:
    """One ``calflow worker --id NAME`` process that can be restarted with other keys."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, **env: str) -> None:
        self.env = {**self.env, **env}
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "calflow.cli.main", "worker", "--id", self.name],
            stdout=subprocess.DEVNULL, stderr=self._log, env=child_env(**self.env),
        )  # fmt: skip

    def stop(self) -> None:
        """Stop it as an operator would (SIGINT, the in-flight batches finish)."""
        assert self.proc is not None and self._log is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.seek(0)
        log = self._log.read().decode(errors="replace")
        self._log.close()
        assert "Traceback" not in log, log[-4000:]
        assert self.proc.returncode in (0, 130, -signal.SIGINT), log[-4000:]


@dataclass
class Stack:
    """The database, the workers, the keys command and a stream of bookings."""

    home: Path
    url: str
    engine: Engine
    sandbox: SandboxProcess
    tag: str
    workers: list[Worker] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _feeder: threading.Thread | None = None

    def env(self, **extra: str) -> dict[str, str]:
        return {"CALFLOW_HOME": str(self.home), "CALFLOW_DATABASE_URL": self.url,
                "CALFLOW_KEYS_HEARTBEAT_S": BEAT_S, **extra}  # fmt: skip

    def keys(self, *args: str, **env: str) -> tuple[int, Any, str]:
        """``calflow keys ARGS --json``: exit code, JSON output (or None), stderr."""
        proc = subprocess.run(
            [sys.executable, "-m", "calflow.cli.main", "keys", *args, "--json"],
            env=child_env(**self.env(**env), COLUMNS="200", NO_COLOR="1"),
            capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        assert "Traceback" not in proc.stderr, proc.stderr
        out = json.loads(proc.stdout) if proc.returncode == 0 else None
        return proc.returncode, out, " ".join(proc.stderr.split())

    def holding(self, key: str, names: set[str] | None = None) -> Callable[[], bool]:
        """A check: the running workers named (default: all) report holding ``key``."""

        def check() -> bool:
            live = {p.name: p for p in registry.live(self.engine)}
            wanted = names or {w.name for w in self.workers}
            return wanted <= set(live) and all(key in live[n].key_ids for n in wanted)

        return check

    def feed(self) -> None:
        """Publish a booking every 50 ms until :meth:`stop_feeding`."""
        inbox = Inbox(self.engine)

        def loop() -> None:
            n = 0
            while not self._stop.wait(0.05):
                uid = f"{self.tag}-{len(self.published)}"
                person = Person(name="Ann", email=f"{uid}@example.com", phone=f"+33612{n:06d}")
                inbox.publish(replace(booking_event(), booking_uid=uid, attendees=(person,)))
                self.published.append(uid)
                n += 1

        self._feeder = threading.Thread(target=loop, daemon=True)
        self._feeder.start()

    def stop_feeding(self) -> None:
        self._stop.set()
        if self._feeder is not None:
            self._feeder.join()

    def settle(self) -> None:
        """Wait for every published booking's run to end; check none failed and every
        SMS was sent exactly once."""
        runs = RunStore(self.engine)
        count = len(self.published)
        poll(lambda: len(runs.list(status="succeeded", limit=count + 10)) >= count or
             runs.list(status="failed", limit=5), wait_s=240, what=f"{count} runs")  # fmt: skip
        failed = runs.list(status="failed", limit=5)
        assert failed == [], [runs.get(r["id"])["steps"] for r in failed]
        assert len(runs.list(limit=count + 10)) == count
        resp = httpx.get(f"{self.sandbox.root}/_sandbox/twilio/messages", timeout=60)
        sent = Counter(str(m["body"]) for m in resp.json())
        assert {f"keys {uid}": 1 for uid in self.published} == {
            body: n for body, n in sent.items() if body.startswith(f"keys {self.tag}-")
        }


def _stack(home: Path, url: str, sandbox: SandboxProcess, settings: Settings) -> Stack:
    twilio = httpx.get(f"{sandbox.root}/_sandbox/state", timeout=30).json()["twilio"]
    store = IntegrationStore.default(settings)
    store.add("twilio", "sms",
              {"base_url": f"{sandbox.root}/twilio", "account_sid": twilio["account_sid"],
               "from_number": "+15005550006"},
              {"auth_token": twilio["auth_token"]})  # fmt: skip
    WorkflowStore(store.engine).apply(FLOW)
    return Stack(home, url, store.engine, sandbox, tag=f"rot{secrets.token_hex(3)}")


def _token(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(IntegrationRow.secrets)).scalar_one())


def test_key_file_rotation_with_two_workers_running_fails_no_run(
    tmp_path: Path, sandbox: SandboxProcess, isolated_pg_url: str
) -> None:
    stack = _stack(tmp_path, isolated_pg_url, sandbox,
                   Settings(home=tmp_path, database_url=isolated_pg_url))  # fmt: skip
    (old,) = read_key_file(tmp_path / KEY_FILE_NAME)
    stack.workers = [Worker(n, stack.env()) for n in ("w1", "w2")]
    try:
        for worker in stack.workers:
            worker.start()
        poll(stack.holding(key_id(old)), what="both workers to report their keys")
        stack.feed()

        code, _, err = stack.keys("rotate")
        assert code == 3, err
        assert "2 calflow processes are running" in err and "worker w1" in err

        code, added, err = stack.keys("add")
        assert code == 0, err
        new = added["key"]
        mark = len(stack.published)
        code, rotated, err = stack.keys("rotate", "--wait", "60")
        assert code == 0, err
        assert rotated["key"] == new and rotated["reencrypted"] == 1
        assert rotated["lagging"] == []
        assert len(stack.published) > mark  # bookings kept arriving during the rotation

        code, retired, err = stack.keys("retire")
        assert code == 0, err
        assert retired["retired"] == [key_id(old)]
        poll(
            lambda: all(p.key_ids == (new,) for p in registry.live(stack.engine))
            and len(registry.live(stack.engine)) == 2,
            what="the workers to drop the old key",
        )
        mark = len(stack.published)
        poll(lambda: len(stack.published) > mark + 20, what="more bookings after retire")
        stack.stop_feeding()
        stack.settle()
    finally:
        stack.stop_feeding()
        for worker in stack.workers:
            if worker.proc is not None:
                worker.stop()
    assert [key_id(k) for k in read_key_file(tmp_path / KEY_FILE_NAME)] == [new]
    with pytest.raises(Exception, match="wrong or missing"):
        Vault([old]).decrypt_json(_token(stack.engine))
    assert registry.live(stack.engine) == []  # both removed their rows when they stopped
    reset_engines()


def test_env_key_rotation_by_rolling_restarts_fails_no_run(
    tmp_path: Path, sandbox: SandboxProcess, isolated_pg_url: str
) -> None:
    k1 = Vault.generate_key()
    settings = Settings(home=tmp_path, database_url=isolated_pg_url, secret_keys=k1)
    stack = _stack(tmp_path, isolated_pg_url, sandbox, settings)
    stack.workers = [Worker(n, stack.env(CALFLOW_SECRET_KEYS=k1)) for n in ("w1", "w2")]
    w1, w2 = stack.workers
    try:
        for worker in stack.workers:
            worker.start()
        poll(stack.holding(key_id(k1)), what="both workers to report their keys")
        stack.feed()

        code, added, err = stack.keys("add", CALFLOW_SECRET_KEYS=k1)
        assert code == 0, err
        k2 = added["new_secret_keys"].split(",")[1]
        both = f"{k1},{k2}"
        code, _, err = stack.keys("rotate", CALFLOW_SECRET_KEYS=both)
        assert code == 3, err
        assert "2 running processes do not hold the staged key" in err
        assert err.count("restart it with CALFLOW_SECRET_KEYS") == 2

        w1.stop()  # rolling restart with both keys: w2 carries the runs meanwhile
        w1.start(CALFLOW_SECRET_KEYS=both)
        poll(stack.holding(key_id(k2), {"w1"}), what="w1 to hold the new key")
        code, _, err = stack.keys("rotate", CALFLOW_SECRET_KEYS=both)
        assert code == 3 and "worker w2" in err and "worker w1" not in err, err
        w2.stop()
        w2.start(CALFLOW_SECRET_KEYS=f"{k2},{k1}")  # either order: the recorded primary rules
        mark = len(stack.published)

        code, rotated, err = stack.keys("rotate", "--wait", "60", CALFLOW_SECRET_KEYS=both)
        assert code == 0, err
        assert rotated["key"] == key_id(k2) and rotated["reencrypted"] == 1
        assert rotated["new_secret_keys"] == f"{k2},{k1}" and rotated["lagging"] == []
        assert len(stack.published) > mark
        assert Vault([k2]).decrypt_json(_token(stack.engine))

        code, retired, err = stack.keys("retire", CALFLOW_SECRET_KEYS=both)
        assert code == 0, err
        assert retired["retired"] == [key_id(k1)] and retired["new_secret_keys"] == k2
        for worker in stack.workers:  # rolling restart with the new key alone
            worker.stop()
            worker.start(CALFLOW_SECRET_KEYS=k2)
            poll(stack.holding(key_id(k2), {worker.name}), what=f"{worker.name} restarted")
        mark = len(stack.published)
        poll(lambda: len(stack.published) > mark + 20, what="more bookings after the restarts")
        stack.stop_feeding()
        stack.settle()
    finally:
        stack.stop_feeding()
        for worker in stack.workers:
            if worker.proc is not None:
                worker.stop()
    assert all(p.key_ids == (key_id(k2),) for p in registry.live(stack.engine))
    reset_engines()
