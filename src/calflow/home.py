"""``CALFLOW_HOME`` is private: the directory 0700, every file in it 0600.

It holds encrypted secrets, their key and every booking event. calflow makes each
file there with an explicit mode instead of trusting the umask: ``calflow.db``
(``calflow.db.engine``), ``dbos.sqlite`` (made here before DBOS opens it), the key file
and its lock (``calflow.keys.keyfile``), ``<db>-writer.lock``, ``<db>-writer-queue.lock``,
``dispatch.lock`` and ``serve.lock`` (``os.open(…, 0o600)``). SQLite gives a database's
``-wal`` and ``-shm`` files the mode of the database file, so they follow. A home made before, or
by hand, with looser modes is not changed behind the operator's back:
:func:`warn_loose_modes` names each path, its mode and the ``chmod`` that fixes it, in
the log and on stderr, when ``calflow serve`` or ``calflow worker`` starts.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from pathlib import Path

from calflow.settings import Settings

__all__ = [
    "DBOS_FILE",
    "loose_modes",
    "make_private_dir",
    "make_private_file",
    "prepare_home",
    "warn_loose_modes",
]

log = logging.getLogger("calflow.home")
DBOS_FILE = "dbos.sqlite"
"""DBOS's system database in the home, when calflow runs on SQLite."""
_OTHERS = stat.S_IRWXG | stat.S_IRWXO


def make_private_dir(path: Path) -> None:
    """Create the directory ``path`` (and missing parents) with mode 0700; an existing
    one is left as it is (:func:`loose_modes` reports it)."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)  # exactly 0700, whatever the umask


def make_private_file(path: Path) -> None:
    """Create the empty file ``path`` with mode 0600 if there is none."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def prepare_home(settings: Settings) -> None:
    """The home of ``settings`` made private, with DBOS's SQLite file made 0600 before
    DBOS creates it with the umask's mode (when calflow runs on SQLite)."""
    make_private_dir(settings.home)
    if settings.resolved_database_url().startswith("sqlite"):
        make_private_file(settings.home / DBOS_FILE)


def loose_modes(home: Path) -> list[str]:
    """One line per path in ``home`` (and ``home`` itself) open to other users: the path,
    its mode and the ``chmod`` that fixes it. Symbolic links are not followed."""
    try:
        mode = stat.S_IMODE(home.stat().st_mode)
    except FileNotFoundError:
        return []
    lines = []
    if mode & _OTHERS:
        lines.append(_line("CALFLOW_HOME", home, mode, 0o700))
    for entry in sorted(home.iterdir()):
        info = entry.lstat()
        if stat.S_ISLNK(info.st_mode) or not stat.S_IMODE(info.st_mode) & _OTHERS:
            continue
        wanted = 0o700 if stat.S_ISDIR(info.st_mode) else 0o600
        lines.append(
            _line("the file" if wanted == 0o600 else "the directory", entry, info.st_mode, wanted)
        )
    return lines


def _line(what: str, path: Path, mode: int, wanted: int) -> str:
    return (
        f"{what} {path} has mode {stat.S_IMODE(mode):04o}, open to other users; "
        f"fix it with: chmod {wanted:o} {path}"
    )


def warn_loose_modes(home: Path) -> list[str]:
    """Warn (log and stderr) of each path :func:`loose_modes` finds; returns the lines.
    When ``calflow.logs`` put its handler on stderr, the log line is the only one."""
    lines = loose_modes(home)
    on_stderr = any(getattr(h, "_calflow", False) for h in logging.getLogger().handlers)
    for line in lines:
        log.warning("%s", line)
        # without a handler, logging itself prints it on stderr
        if log.hasHandlers() and not on_stderr:
            sys.stderr.write(f"warning: {line}\n")
    return lines
