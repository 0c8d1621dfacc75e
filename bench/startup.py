"""How long calflow's commands take to answer: ``--help``, ``--version``, a subcommand's
help, a command that reads the home, and ``serve`` until its first ``/healthz``.

Each command runs ``--rounds`` times as a fresh process (``.venv/bin/calflow``) in a
fresh ``CALFLOW_HOME``; the median wall time is printed beside the baseline measured in
the same run, a bare ``python -c pass``, and beside issue #17's goal where it sets one
(``--help`` <= 0.3 s, ``events list`` <= 0.5 s, ``serve`` answering ``/healthz`` <= 1.5 s).
``serve`` is timed from the process start to its first answered ``GET /healthz``; the
commands that read the home run on one made (migrated) before timing.

    python bench/startup.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

CALFLOW = str(Path(sys.executable).with_name("calflow"))


def _env(home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALFLOW_")}
    return {**env, "CALFLOW_HOME": home}


def _time(argv: list[str], home: str) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=_env(home), check=True, capture_output=True)
    return time.perf_counter() - start


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(home: str) -> float:
    port = _free_port()
    argv = [CALFLOW, "serve", "--host", "127.0.0.1", "--port", str(port)]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=_env(home), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return time.perf_counter() - start
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited with {proc.returncode}")
            time.sleep(0.01)
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    cases: list[tuple[str, float | None, Callable[[str], float]]] = [
        ("baseline: python -c pass", None, lambda h: _time([sys.executable, "-c", "pass"], h)),
        ("calflow --version", None, lambda h: _time([CALFLOW, "--version"], h)),
        ("calflow --help", 0.3, lambda h: _time([CALFLOW, "--help"], h)),
        ("calflow integrations --help", None,
         lambda h: _time([CALFLOW, "integrations", "--help"], h)),
        ("calflow events list", 0.5, lambda h: _time([CALFLOW, "events", "list"], h)),
        ("calflow integrations list", None, lambda h: _time([CALFLOW, "integrations", "list"], h)),
        ("calflow serve (to first /healthz)", 1.5, _serve),
    ]  # fmt: skip
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as home:
        _time([CALFLOW, "events", "list"], home)  # makes and migrates the home
        for name, _, case in cases:
            results[name] = statistics.median(case(home) for _ in range(args.rounds))
    base = results[cases[0][0]]
    print(f"| command | median s ({args.rounds} rounds) | x baseline | goal |")
    print("|---|---:|---:|---|")
    for name, goal, _ in cases:
        value = results[name]
        met = "" if goal is None else f"<= {goal} s: {'met' if value <= goal else 'NOT met'}"
        print(f"| {name} | {value:.3f} | {value / base:.1f} | {met} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
