"""Run ``calflow sandbox`` as a separate process on a free port, for benchmarks."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def sandbox_process(
    api_key: str | None,
    seed: int = 0,
    rate_limit: int = 0,
    *,
    savvycal_seed: int | None = None,
    savvycal_token: str | None = None,
    timeout_s: float = 30.0,
) -> Iterator[str]:
    """Yield the sandbox's root URL; the process is stopped on exit.

    ``api_key`` is the Cal.com key to accept (``None``: the sandbox makes one up);
    ``savvycal_seed`` / ``savvycal_token`` are the SavvyCal event count (default:
    ``seed``) and personal token. The Cal.com base URL is ``{root}/calcom``, the
    SavvyCal one ``{root}/savvycal``.
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
        "--rate-limit",
        str(rate_limit),
    ]
    if api_key is not None:
        cmd += ["--api-key", api_key]
    if savvycal_seed is not None:
        cmd += ["--savvycal-seed", str(savvycal_seed)]
    if savvycal_token is not None:
        cmd += ["--savvycal-token", savvycal_token]
    # stderr to a file, not a pipe: a long run that logs would fill a pipe and stall
    with tempfile.TemporaryFile() as err_file:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err_file)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    httpx.get(f"{base}/_sandbox/state", timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        err_file.seek(0)
                        err = err_file.read().decode(errors="replace")
                        raise RuntimeError(f"sandbox did not start: {err}") from None
                    time.sleep(0.1)
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=10)
