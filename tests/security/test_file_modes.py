"""``CALFLOW_HOME`` is private (issue #16, item 6): made 0700 with every file 0600 by a
real ``calflow serve``, even under a umask that would leave them open; a home with
looser modes is warned of at start, naming each path, its mode and the fix."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from db_fixtures import clean_calflow_env
from e2e.serve_process import serve_process

from .support import guarded_server, signed_delivery

__all__ = ["clean_calflow_env"]


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_fresh_home_is_0700_and_every_file_in_it_0600(tmp_path: Path) -> None:
    with umask(0), guarded_server(tmp_path) as g:  # the umask of the server too
        body, headers = signed_delivery()  # a write: the WAL files exist
        resp = httpx.post(f"{g.server.url}{g.hook_path}", content=body, headers=headers)
        assert resp.status_code == 200
        home = g.home.path
        files = {p.name: mode(p) for p in home.iterdir()}
        home_mode = mode(home)

    assert home_mode == 0o700
    expected = {"calflow.db", "calflow.db-wal", "calflow.db-shm", "calflow.db-writer.lock",
                "calflow.db-writer-queue.lock", "dbos.sqlite", "dispatch.lock",
                "secret.key", "serve.lock"}  # fmt: skip
    assert expected <= files.keys(), files
    assert {name: f"{m:o}" for name, m in files.items() if m != 0o600} == {}


def test_a_home_open_to_others_is_warned_of_at_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o755)
    notes = home / "calflow.db"
    notes.write_bytes(b"")
    notes.chmod(0o644)
    with serve_process({"CALFLOW_HOME": str(home)}, worker=False) as server:
        output = server.output()

    assert (
        f"CALFLOW_HOME {home} has mode 0755, open to other users; fix it with: chmod 700 {home}"
        in output
    )
    assert (
        f"the file {notes} has mode 0644, open to other users; fix it with: chmod 600 {notes}"
        in output
    )
    assert mode(home) == 0o755 and mode(notes) == 0o644  # warned of, not changed
