"""``calflow.home``: a private home made whatever the umask, and looser modes reported."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from calflow.home import loose_modes, prepare_home, warn_loose_modes
from calflow.settings import Settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_prepare_home_is_private_under_an_open_umask(tmp_path: Path) -> None:
    home = tmp_path / "a" / "home"
    old = os.umask(0)
    try:
        prepare_home(Settings(home=home, database_url=None, secret_keys=None))
    finally:
        os.umask(old)
    assert _mode(home) == 0o700
    assert _mode(home / "dbos.sqlite") == 0o600
    assert loose_modes(home) == []


def test_prepare_home_on_postgres_makes_no_dbos_file(tmp_path: Path) -> None:
    url = "postgresql://postgres@127.0.0.1:5432/test"
    prepare_home(Settings(home=tmp_path / "h", database_url=url, secret_keys=None))
    assert list((tmp_path / "h").iterdir()) == []


def test_loose_modes_name_path_mode_and_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    (home / "sub").mkdir(parents=True)
    home.chmod(0o750)
    (home / "sub").chmod(0o755)
    (home / "ok").write_text("x")
    (home / "ok").chmod(0o600)
    (home / "open").write_text("x")
    (home / "open").chmod(0o640)
    (home / "link").symlink_to(home / "open")  # a link is judged by its target's own entry

    lines = warn_loose_modes(home)

    assert lines == [
        f"CALFLOW_HOME {home} has mode 0750, open to other users; fix it with: chmod 700 {home}",
        f"the file {home / 'open'} has mode 0640, open to other users; "
        f"fix it with: chmod 600 {home / 'open'}",
        f"the directory {home / 'sub'} has mode 0755, open to other users; "
        f"fix it with: chmod 700 {home / 'sub'}",
    ]
    err = capsys.readouterr().err
    assert all(line in err for line in lines)


def test_a_missing_home_has_nothing_to_report(tmp_path: Path) -> None:
    assert loose_modes(tmp_path / "absent") == []
