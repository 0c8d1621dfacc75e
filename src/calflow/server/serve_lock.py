"""One ``calflow serve`` per ``CALFLOW_HOME``: the lock file ``serve.lock``.

The server holds an exclusive ``flock`` on ``<home>/serve.lock`` (mode 0600) while it
runs and writes its pid and URL into it, and the directory of its multiprocess metrics
(``--workers``), so that the next server removes it if this one was killed first. The
kernel releases the lock when the process ends, however it ends, so a crashed server
never leaves a stale lock: the file stays behind, its contents are only read while
someone holds it. A second server on the same home finds the lock held and is refused
with the first one's pid and URL (:class:`ServeLockHeld`); ``calflow doctor`` asks the
same question (:func:`holder`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from calflow.errors import ConfigError

__all__ = ["LOCK_FILE", "Holder", "ServeLock", "ServeLockHeld", "holder"]

LOCK_FILE = "serve.lock"


class ServeLockHeld(ConfigError):
    """Another ``calflow serve`` runs on this home."""

    code = "ALREADY_SERVING"


@dataclass(frozen=True)
class Holder:
    """The server that holds a home's lock, as it wrote itself down."""

    pid: int | None
    url: str | None
    metrics_dir: str | None = None
    """The multiprocess-metrics directory it made (``--workers``), if any."""

    def describe(self) -> str:
        pid = f"pid {self.pid}" if self.pid else "pid unknown"
        return f"{pid}, {self.url}" if self.url else pid


def _read(fd: int) -> Holder:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    pid, url, metrics = data.get("pid"), data.get("url"), data.get("metrics_dir")
    return Holder(
        pid if isinstance(pid, int) else None,
        url if isinstance(url, str) else None,
        metrics if isinstance(metrics, str) else None,
    )


def holder(home: Path) -> Holder | None:
    """The server running on ``home``, or None when none holds its lock."""
    try:
        fd = os.open(home / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class ServeLock:
    """The exclusive lock of ``home`` for this process, held from :meth:`acquire` to
    :meth:`release` (or the process's end)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / LOCK_FILE
        self._fd: int | None = None
        self.previous: Holder | None = None
        """What the last server on this home wrote down (it ended, maybe killed)."""

    def acquire(self) -> None:
        """Take the lock; ``ServeLockHeld`` naming the home and the running server.
        :attr:`previous` is then what the server before this one left in the file."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            running = _read(fd)
            os.close(fd)
            raise ServeLockHeld(
                f"calflow serve already runs on CALFLOW_HOME {self.home} "
                f"({running.describe()}); stop it first, or give this one another "
                "CALFLOW_HOME"
            ) from None
        self._fd = fd
        self.previous = _read(fd)
        self.record(None)

    def record(self, url: str | None, metrics_dir: str | None = None) -> None:
        """Write this process's pid, ``url`` and ``metrics_dir`` into the lock file."""
        if self._fd is None:
            return
        data = {"pid": os.getpid(), "url": url, "metrics_dir": metrics_dir}
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(data).encode(), 0)

    def release(self) -> None:
        """Let the lock go (the file stays: removing it would race a new server)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ServeLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
