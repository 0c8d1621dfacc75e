"""Run ``calflow serve`` and other ``calflow`` commands as separate processes.

``serve_process`` starts the real server (uvicorn) on a free port and waits for
``/healthz``; ``ServeProcess.paused()`` freezes it with SIGSTOP so that a delivery
sent meanwhile waits in the listen backlog and is handled after SIGCONT (a
deterministic "the webhook arrives after the action" without sleeping).
``CalflowHome`` is a ``CALFLOW_HOME`` (optionally on a PostgreSQL database): it runs
the CLI against it and opens its store and inbox in-process.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx

from calflow.events.inbox import Inbox
from calflow.integrations import IntegrationStore
from calflow.settings import Settings
from cli.conftest import Result, calflow_command

from .sandbox_process import child_env, free_port

T = TypeVar("T")


def poll(check: Callable[[], T | None], wait_s: float = 20.0, what: str = "condition") -> T:
    """``check()``'s first truthy value, tried every 50 ms for up to ``wait_s`` seconds."""
    deadline = time.monotonic() + wait_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {wait_s} s waiting for {what}")
        time.sleep(0.05)


@dataclass(frozen=True)
class CalflowHome:
    """A ``CALFLOW_HOME`` and, optionally, the database URL every process shares."""

    path: Path
    database_url: str | None = None

    def env(self) -> dict[str, str]:
        env = {"CALFLOW_HOME": str(self.path)}
        if self.database_url:
            env["CALFLOW_DATABASE_URL"] = self.database_url
        return env

    def settings(self) -> Settings:
        # Explicit values: no CALFLOW_* of the developer's shell (children never see them).
        return Settings(home=self.path, database_url=self.database_url, secret_keys=None)

    def store(self) -> IntegrationStore:
        """The store in this process (engines are cached per URL: cheap to call again)."""
        return IntegrationStore.default(self.settings())

    def inbox(self) -> Inbox:
        store = self.store()
        return Inbox(store.engine, store.workspace_id)

    def run(self, *args: str, timeout: float = 60, forbidden: tuple[str, ...] = ()) -> Result:
        """``calflow ARGS`` in a subprocess; never a traceback, never a ``forbidden`` text."""
        proc = subprocess.run(
            [*calflow_command(), *args],
            env=child_env(**self.env(), COLUMNS="100", NO_COLOR="1"),
            input="",
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        result = Result(tuple(args), proc.returncode, proc.stdout, proc.stderr)
        output = result.stdout + result.stderr
        assert "Traceback" not in output, str(result)
        for text in forbidden:
            assert text not in output, f"{text!r} was shown: {result}"
        return result

    def json(self, *args: str, forbidden: tuple[str, ...] = ()) -> Any:
        """The JSON a successful ``calflow ARGS`` printed (``--json`` is added)."""
        result = self.run(*args, "--json", forbidden=forbidden)
        assert result.code == 0, str(result)
        return result.json


@dataclass
class ServeProcess:
    """A running ``calflow serve``."""

    url: str
    proc: subprocess.Popen[bytes]
    log: IO[bytes]

    def hook_url(self, integration_id: str) -> str:
        return f"{self.url}/hooks/{integration_id}"

    def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", content=body, headers=dict(headers), timeout=30)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Freeze the server (SIGSTOP) for the block; requests queue until SIGCONT."""
        self.proc.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.proc.send_signal(signal.SIGCONT)

    def output(self) -> str:
        """What the server wrote to stderr so far."""
        self.log.flush()
        with open(self.log.name, "rb") as f:
            return f.read().decode(errors="replace")


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def serve_process(
    env: Mapping[str, str], *, worker: bool = True, wait_s: float = 60
) -> Iterator[ServeProcess]:
    """``calflow serve --host 127.0.0.1 --port <free>`` with ``env``; stopped on exit.

    A port taken between choosing and binding it is retried with another one.
    """
    with tempfile.NamedTemporaryFile(prefix="calflow-serve-", suffix=".log") as log:
        for _ in range(3):
            port = free_port()
            args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
            if not worker:
                args.append("--no-worker")
            proc = subprocess.Popen(
                [sys.executable, "-m", "calflow.cli.main", *args],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=child_env(**env),
            )
            server = ServeProcess(f"http://127.0.0.1:{port}", proc, log)
            deadline = time.monotonic() + wait_s
            while proc.poll() is None and not _healthy(server.url):
                if time.monotonic() > deadline:
                    _stop(proc)
                    raise RuntimeError(f"calflow serve did not start: {server.output()}")
                time.sleep(0.05)
            if proc.poll() is None:
                break
            if "address already in use" not in server.output():
                raise RuntimeError(f"calflow serve exited {proc.returncode}: {server.output()}")
        else:
            raise RuntimeError(f"calflow serve found no free port: {server.output()}")
        try:
            yield server
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGCONT)  # a paused server cannot handle SIGTERM
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
