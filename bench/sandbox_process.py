"""Run ``calflow sandbox`` as a separate process on a free port, for benchmarks."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def sandbox_process(api_key: str, seed: int = 0, rate_limit: int = 0) -> Iterator[str]:
    """Yield the sandbox's root URL; the process is stopped on exit."""
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
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/_sandbox/state", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"sandbox did not start: {err}") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
