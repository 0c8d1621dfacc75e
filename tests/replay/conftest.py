"""Fixtures of the replay tests: the sandbox and a receiver, each a real server process."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from calflow.db.engine import reset_engines
from calflow.integrations import IntegrationStore
from calflow.replay import ReplayEngine
from calflow.settings import Settings
from db_fixtures import clean_calflow_env
from e2e.sandbox_process import SandboxProcess, child_env, free_port, sandbox_process

__all__ = ["clean_calflow_env"]

API_KEY = "cal_live_replay_5c1d2e3f"
TOKEN = "pt_secret_replay_9a8b7c6d"
SECRET = "whsec_replay_test_secret"
CALCOM_SEED = 130
SAVVYCAL_SEED = 260
"""More than two 100-item pages of each provider's history."""


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxProcess]:
    """One sandbox process; tests must not change its seeded history."""
    with sandbox_process(
        API_KEY, seed=CALCOM_SEED, savvycal_token=TOKEN, savvycal_seed=SAVVYCAL_SEED
    ) as sb:
        yield sb


@dataclass
class Receiver:
    """A receiver process (see ``receiver.py``) and its controls."""

    url: str
    port: int

    def stats(self) -> dict[str, Any]:
        resp = httpx.get(f"http://127.0.0.1:{self.port}/_stats", timeout=10)
        resp.raise_for_status()
        out: dict[str, Any] = resp.json()
        return out

    def mode(self, **mode: Any) -> None:
        httpx.post(f"http://127.0.0.1:{self.port}/_mode", json=mode, timeout=10).raise_for_status()

    def reset(self) -> None:
        httpx.post(f"http://127.0.0.1:{self.port}/_reset", timeout=10).raise_for_status()


def start_receiver(port: int | None = None) -> tuple[subprocess.Popen[bytes], Receiver]:
    """Start ``receiver.py`` on ``port`` (a free one by default) and wait until it answers."""
    port = port or free_port()
    script = Path(__file__).with_name("receiver.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(port), SECRET],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=child_env(),
    )
    rec = Receiver(f"http://127.0.0.1:{port}/hooks/replay", port)
    deadline = time.monotonic() + 15
    while True:
        try:
            rec.stats()
            return proc, rec
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("the test receiver did not start") from None
            time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def receiver_process() -> Iterator[Receiver]:
    proc, rec = start_receiver()
    try:
        yield rec
    finally:
        stop(proc)


@pytest.fixture
def receiver(receiver_process: Receiver) -> Receiver:
    """The receiver, emptied and in its default mode (200 for every delivery)."""
    receiver_process.mode()
    receiver_process.reset()
    return receiver_process


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A calflow home on a temporary SQLite database."""
    yield tmp_path
    reset_engines()


@pytest.fixture
def store(home: Path, sandbox: SandboxProcess) -> IntegrationStore:
    """A store with a SavvyCal (``sc``) and a Cal.com (``cc``) integration on the sandbox."""
    s = IntegrationStore.default(Settings(home=home))
    s.add("savvycal", "sc", {"base_url": sandbox.savvycal}, {"token": TOKEN})
    s.add("cal_com", "cc", {"base_url": sandbox.calcom}, {"api_key": API_KEY})
    return s


@pytest.fixture
def engine(store: IntegrationStore) -> ReplayEngine:
    """A replay engine on the store, with short backoffs."""
    return ReplayEngine(store, backoff_base_s=0.02)


def all_savvycal_events(sandbox: SandboxProcess) -> list[dict[str, Any]]:
    """Every SavvyCal event, read straight from the sandbox API (the backfill query)."""
    out: list[dict[str, Any]] = []
    params: dict[str, Any] = {
        "period": "all", "state": "all", "attendance": "any", "direction": "asc", "limit": 100,
    }  # fmt: skip
    headers = {"Authorization": f"Bearer {TOKEN}"}
    while True:
        resp = httpx.get(f"{sandbox.savvycal}/v1/events", params=params, headers=headers)
        resp.raise_for_status()
        body = resp.json()
        out += body["entries"]
        if not body["metadata"]["after"]:
            return out
        params["after"] = body["metadata"]["after"]


def all_calcom_bookings(sandbox: SandboxProcess) -> list[dict[str, Any]]:
    """Every Cal.com booking, read straight from the sandbox API."""
    out: list[dict[str, Any]] = []
    skip = 0
    headers = {"Authorization": f"Bearer {API_KEY}", "cal-api-version": "2024-08-13"}
    while True:
        resp = httpx.get(
            f"{sandbox.calcom}/v2/bookings",
            params={"take": 100, "skip": skip},
            headers=headers,
        )
        resp.raise_for_status()
        body = resp.json()
        out += body["data"]
        if not body["pagination"]["hasNextPage"]:
            return out
        skip += len(body["data"])
