"""``calflow serve`` starts cleanly (issue #17, item 6): it binds before it prints the
banner, a busy port is one clear error (exit 2), and a second server on the same home is
refused with the first one's pid and URL; a killed server leaves no stale lock."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from cli.conftest import calflow_command
from db_fixtures import clean_calflow_env
from e2e.sandbox_process import child_env, free_port
from e2e.serve_process import CalflowHome

from .support import healthy, serving, start

pytestmark = pytest.mark.slow

__all__ = ["clean_calflow_env"]


def _serve(home: CalflowHome, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``calflow serve ARGS`` expected to stop by itself."""
    return subprocess.run(
        [*calflow_command(), "serve", "--host", "127.0.0.1", *args],
        env=child_env(**home.env(), COLUMNS="80", NO_COLOR="1"),
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("mode", [["--no-worker"], ["--workers", "1"], []])
def test_a_busy_port_is_one_line_naming_it_and_the_fix(tmp_path: Path, mode: list[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        got = _serve(CalflowHome(tmp_path / "home"), "--port", str(port), *mode)

    assert got.returncode == 2, got
    lines = got.stderr.strip().splitlines()
    assert len(lines) == 1, got.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "address already in use" in lines[0]
    assert "--port" in lines[0]
    assert "Traceback" not in got.stderr + got.stdout
    assert "calflow serving" not in got.stdout  # no banner for a server that never ran
    assert "worker" not in got.stdout.lower()  # and no child worker was started


def test_the_banner_comes_once_the_port_accepts_connections(tmp_path: Path) -> None:
    home = CalflowHome(tmp_path / "home")
    proc = subprocess.Popen(
        [*calflow_command(), "serve", "--host", "127.0.0.1", "--port", "0", "--no-worker"],
        env=child_env(**home.env()), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().decode()
        found = re.fullmatch(r"calflow serving on http://127\.0\.0\.1:(\d+)\n", first)
        assert found, first
        port = int(found[1])
        assert port != 0
        # at the moment the banner is printed the socket listens: a connection is taken
        # into its backlog at once, even before uvicorn serves it
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        rest = proc.stdout.readline().decode()
        assert rest.strip().startswith("console"), rest
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()


def test_a_second_serve_on_the_same_home_is_refused_with_the_first_ones_pid(
    tmp_path: Path,
) -> None:
    home = CalflowHome(tmp_path / "home")
    with serving(home, "--no-worker") as first:
        other_port = free_port()
        got = _serve(home, "--port", str(other_port), "--no-worker")
        still_up = healthy(first.url)
        pid = first.proc.pid

    assert got.returncode == 2, got
    message = " ".join(got.stderr.split())
    assert "ALREADY_SERVING" in message
    assert str(home.path) in message
    assert f"pid {pid}" in message and first.url in message, message
    assert "Traceback" not in got.stderr
    assert "calflow serving" not in got.stdout
    assert still_up
    # the refused one did not take its port either
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", other_port))


def test_another_home_serves_beside_it(tmp_path: Path) -> None:
    a_home, b_home = CalflowHome(tmp_path / "a"), CalflowHome(tmp_path / "b")
    with serving(a_home, "--no-worker") as a, serving(b_home, "--no-worker") as b:
        assert healthy(a.url) and healthy(b.url)


def test_a_killed_server_leaves_no_stale_lock(tmp_path: Path) -> None:
    home = CalflowHome(tmp_path / "home")
    first = start(home, "--no-worker")
    first.proc.send_signal(signal.SIGKILL)  # no clean-up code runs
    first.proc.wait(timeout=20)
    assert (home.path / "serve.lock").exists()

    with serving(home, "--no-worker") as second:
        assert healthy(second.url)
    first.out.close()
    first.err.close()
