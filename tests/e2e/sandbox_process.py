"""Run ``calflow sandbox`` as a separate process (a real server, like the real provider).

Shared by the end-to-end and CLI tests. The sandbox in a thread of the test process
works too, but GIL contention makes each request cost ~40 ms; a process does not.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from db_fixtures import LOCAL_TARGETS


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: no ``CALFLOW_*`` of the developer's shell, and
    loopback targets allowed (``CALFLOW_ALLOW_PRIVATE``: the sandbox runs on this machine;
    an ``extra`` value wins)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALFLOW_")}
    env["CALFLOW_ALLOW_PRIVATE"] = LOCAL_TARGETS
    env.update(extra)
    return env


@dataclass(frozen=True)
class SandboxProcess:
    """A running sandbox: its root URL, the accepted Cal.com API key and SavvyCal token."""

    root: str
    api_key: str
    savvycal_token: str | None = None

    @property
    def calcom(self) -> str:
        return f"{self.root}/calcom"

    @property
    def savvycal(self) -> str:
        """The SavvyCal base URL (the app adds ``/v1`` itself)."""
        return f"{self.root}/savvycal"

    def state(self, flush: bool = False) -> dict[str, Any]:
        """The Cal.com simulator's whole state (``flush``: after pending webhook deliveries)."""
        params = {"flush": "true"} if flush else None
        resp = httpx.get(f"{self.root}/_sandbox/state", params=params, timeout=30)
        resp.raise_for_status()
        calcom: dict[str, Any] = resp.json()["calcom"]
        return calcom

    def savvycal_state(self, flush: bool = False) -> dict[str, Any]:
        """The SavvyCal simulator's state (``flush``: after pending webhook deliveries).

        It lists the first 200 events in full and counts all of them
        (``event_count``, ``event_states``).
        """
        params = {"flush": "true"} if flush else None
        resp = httpx.get(f"{self.root}/_sandbox/state", params=params, timeout=30)
        resp.raise_for_status()
        savvycal: dict[str, Any] = resp.json()["savvycal"]
        return savvycal

    def booking(self, uid: str) -> dict[str, Any]:
        """One booking as the sandbox stores it (``KeyError`` if there is none)."""
        for b in self.state()["bookings"]:
            if b["uid"] == uid:
                return dict(b)
        raise KeyError(uid)

    def control(self, path: str, body: Any = None) -> dict[str, Any]:
        """``POST /_sandbox/<path>``; raises on a non-2xx answer."""
        resp = httpx.post(f"{self.root}/_sandbox/{path}", json=body, timeout=30)
        resp.raise_for_status()
        out: dict[str, Any] = resp.json()
        return out


@contextmanager
def sandbox_process(
    api_key: str,
    seed: int = 0,
    rate_limit: int = 0,
    fail_rate: float = 0.0,
    *,
    savvycal_token: str | None = None,
    savvycal_seed: int | None = None,
    savvycal_rate_limit: int = 0,
    twilio_mps: float = 0.0,
    latency_ms: float = 0.0,
    smtp_port: int | None = None,
) -> Iterator[SandboxProcess]:
    """Start ``python -m calflow.cli.main sandbox`` on a free port; stop it on exit.

    The SavvyCal, Twilio, latency and SMTP options go to the command line only when
    given (``savvycal_seed`` defaults to ``seed`` in the sandbox, its token to a generated
    one; ``twilio_mps`` to no limit; ``smtp_port``, the SMTP sink's port, to 2525, shared
    by every sandbox on the machine: give a free one to read the mail a test sent).
    """
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "calflow.cli.main",
        "sandbox",
        "--port",
        str(port),
        "--seed",
        str(seed),
        "--api-key",
        api_key,
        "--rate-limit",
        str(rate_limit),
        "--fail-rate",
        str(fail_rate),
    ]
    if savvycal_token is not None:
        cmd += ["--savvycal-token", savvycal_token]
    if savvycal_seed is not None:
        cmd += ["--savvycal-seed", str(savvycal_seed)]
    if savvycal_rate_limit:
        cmd += ["--savvycal-rate-limit", str(savvycal_rate_limit)]
    if twilio_mps:
        cmd += ["--twilio-mps", str(twilio_mps)]
    if latency_ms:
        cmd += ["--latency", str(latency_ms)]
    if smtp_port is not None:
        cmd += ["--smtp-port", str(smtp_port)]
    root = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=child_env())
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"{root}/_sandbox/state", timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        err = log.read().decode(errors="replace")
                        raise RuntimeError(f"sandbox did not start: {err}") from None
                    time.sleep(0.05)
            yield SandboxProcess(root, api_key, savvycal_token)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
