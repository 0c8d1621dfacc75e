"""The real ``calflow`` command on SQLite: ``keys`` exit codes, and servers and workers that
refuse to start on bad keys before they touch an event or a run."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from calflow.db.engine import reset_engines
from calflow.events.inbox import Inbox
from calflow.integrations import IntegrationStore
from calflow.keys.keyfile import KEY_FILE_NAME, read_key_file
from calflow.keys.ring import KeyRing, key_id
from calflow.keys.watch import KeyWatch
from calflow.settings import Settings
from calflow.workflows.runs import RunStore
from calflow.workflows.store import WorkflowStore
from db_fixtures import clean_calflow_env
from e2e.sandbox_process import child_env, free_port
from engine.conftest import booking_event

pytestmark = pytest.mark.slow

__all__ = ["clean_calflow_env"]

SECRET = "cal_live_keys_cli_51d2"
FLOW = {
    "name": "check",
    "trigger": {"kinds": ["created"]},
    "steps": [{"id": "get", "action": "cal_com.GetBooking", "integration": "main",
               "input": {"bookingUid": "{{ booking.uid }}"}}],
}  # fmt: skip


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str

    @property
    def err(self) -> str:
        return " ".join(self.stderr.split())

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


def calflow(home: Path, *args: str, **env: str) -> Ran:
    """``python -m calflow.cli.main ARGS`` with ``CALFLOW_HOME=home``; never a traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "calflow.cli.main", *args],
        env=child_env(CALFLOW_HOME=str(home), COLUMNS="200", NO_COLOR="1", **env),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    ran = Ran(proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in ran.stdout + ran.stderr, ran
    assert SECRET not in ran.stdout + ran.stderr, ran
    return ran


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A home with an integration, a workflow and one stored, undispatched event."""
    settings = Settings(home=tmp_path)
    store = IntegrationStore.default(settings)
    store.add("cal_com", "main", {"base_url": "http://127.0.0.1:9"}, {"api_key": SECRET})
    WorkflowStore(store.engine).apply(FLOW)
    Inbox(store.engine).publish(booking_event())
    yield tmp_path
    reset_engines()


def untouched(home: Path) -> bool:
    """No run was created: the stored event was never dispatched."""
    store = IntegrationStore.default(Settings(home=home, secret_keys=None))
    event = Inbox(store.engine).list(limit=1)[0]
    return RunStore(store.engine).list() == [] and not event["dispatched"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{key}\nnot-a-key\n", "is malformed: line 2 is not a Fernet key"),
        ("\xff\n", "is malformed: line 1 is not ASCII text"),
        ("# emptied by mistake\n", "holds no keys"),
        (None, "cannot read the key file"),
    ],
)
def test_worker_and_serve_refuse_a_bad_key_file_before_touching_a_run(
    home: Path, content: str | None, reason: str
) -> None:
    path = home / KEY_FILE_NAME
    (key,) = read_key_file(path)
    if content is None:
        path.unlink()
        path.mkdir()  # unreadable as a file
    else:
        path.write_bytes(content.format(key=key).encode("latin-1"))
    for args in (["worker", "--id", "w1"], ["serve", "--port", str(free_port())]):
        ran = calflow(home, *args)
        assert ran.code == 2, ran
        assert reason in ran.err and str(path) in ran.err, ran
        assert key not in ran.stdout + ran.stderr
        assert "serving" not in ran.stdout and "running" not in ran.stdout
    if content is None:
        path.rmdir()
        path.write_text(f"{key}\n")
    assert untouched(home)


def test_a_worker_without_the_recorded_primary_key_refuses_to_start(home: Path) -> None:
    (key,) = read_key_file(home / KEY_FILE_NAME)
    assert calflow(home, "keys", "add").code == 0  # records the key in use as primary
    other = KeyRing.from_file(home / "elsewhere" / KEY_FILE_NAME)  # a fresh key of its own

    ran = calflow(home, "worker", "--id", "w1", CALFLOW_SECRET_KEYS=other.keys[0])

    assert ran.code == 2, ran
    assert f"do not include key {key_id(key)}, which encrypts the stored secrets" in ran.err
    assert "CALFLOW_SECRET_KEYS" in ran.err
    assert untouched(home)


def test_keys_rotate_exits_3_while_a_process_runs_and_the_two_steps_succeed(
    home: Path,
) -> None:
    settings = Settings(home=home)
    path = home / KEY_FILE_NAME
    (old,) = read_key_file(path)
    engine = IntegrationStore.default(settings).engine
    process = KeyWatch(engine, KeyRing.from_file(path), role="worker", name="w-test", beat_s=1.0)
    with process:
        refused = calflow(home, "keys", "rotate")
        assert refused.code == 3, refused
        assert "KEYS_NOT_READY" in refused.err and "worker w-test" in refused.err
        assert "calflow keys add" in refused.err and "Nothing was changed" in refused.err
        assert read_key_file(path) == [old]

        added = calflow(home, "keys", "add", "--json")
        assert added.code == 0, added
        staged = added.json["key"]
        assert added.json["new_secret_keys"] is None  # the key file holds it

        rotated = calflow(home, "keys", "rotate", "--wait", "60", "--json")
        assert rotated.code == 0, rotated
        assert rotated.json["key"] == staged and rotated.json["reencrypted"] == 1
        assert process.ring.primary == staged  # it re-read the file and followed

        shown = calflow(home, "keys", "status", "--json")
        assert [p["name"] for p in shown.json["processes"]] == ["w-test"]
        assert shown.json["processes"][0]["encrypts_with"] == staged

        retired = calflow(home, "keys", "retire", key_id(old), "--json")
        assert retired.code == 0, retired
        assert retired.json["retired"] == [key_id(old)]
    assert [key_id(k) for k in read_key_file(path)] == [staged]
    assert IntegrationStore.default(settings).get("main").value("api_key") == SECRET


def test_keys_commands_name_bad_input(home: Path) -> None:
    beat = calflow(home, "keys", "status", CALFLOW_KEYS_HEARTBEAT_S="0")
    assert beat.code == 2 and "CALFLOW_KEYS_HEARTBEAT_S" in beat.err, beat
    assert "greater than 0" in beat.err
    unknown = calflow(home, "keys", "retire", "nope")
    assert unknown.code == 2 and "no key nope" in unknown.err, unknown
    wait = calflow(home, "keys", "rotate", "--wait", "-1")
    assert wait.code == 2 and "--wait" in wait.err, wait
    nowhere = calflow(home / "empty", "keys", "status")
    assert nowhere.code == 2 and "no key file at" in nowhere.err, nowhere
    assert not (home / "empty" / KEY_FILE_NAME).exists()
