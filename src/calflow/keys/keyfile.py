"""The key file ``CALFLOW_HOME/secret.key``: read, create, rewrite, lock.

One Fernet key per line; blank lines and ``#`` comments are ignored; the first key
encrypts unless the database names another (:mod:`calflow.keys.registry`). It is
created with mode 0600 on first use, and rewritten by writing a private temporary file
and renaming it over the old one, so a reader sees the old file or the new one, never
half of one. Every problem reading it is a ``ConfigError`` that names the file and the
line at fault, never a key.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from cryptography.fernet import Fernet

from calflow.errors import ConfigError
from calflow.settings import Settings

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "KEY_FILE_NAME",
    "Stamp",
    "check_key",
    "create_key_file",
    "key_file_path",
    "locked",
    "read_key_file",
    "stamp",
    "write_key_file",
]

log = logging.getLogger("calflow.vault")

KEY_FILE_NAME = "secret.key"
Stamp = tuple[int, int, int, int]
"""What tells that a key file changed: device, inode, modification time (ns), size."""

_MALFORMED = "is not a Fernet key (expected 32 url-safe base64-encoded bytes)"


def key_file_path(settings: Settings) -> Path:
    """Where the key file of ``settings`` lives: ``<home>/secret.key``."""
    return Path(settings.home) / KEY_FILE_NAME


def check_key(key: str) -> bytes:
    """The 32 raw bytes of the Fernet key ``key``; ``ValueError`` if Fernet refuses it."""
    try:
        Fernet(key)
        return base64.urlsafe_b64decode(key)
    except (binascii.Error, TypeError, ValueError):
        raise ValueError(_MALFORMED) from None


def stamp(path: Path) -> Stamp | None:
    """The file's current :data:`Stamp`, or None if it cannot be looked at."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def read_key_file(path: Path) -> list[str]:
    """The keys in ``path``, in order, each once.

    Raises ``ConfigError`` when the file cannot be read (missing, a directory, no
    permission), is not ASCII text, holds a line that is no Fernet key, or holds no key.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot read the key file {path}: {reason}") from None
    _repair_permissions(path)
    keys: list[str] = []
    for number, raw_line in enumerate(data.splitlines(), start=1):
        try:
            line = raw_line.decode("ascii").strip()
        except UnicodeDecodeError:
            raise ConfigError(
                f"the key file {path} is malformed: line {number} is not ASCII text"
            ) from None
        if not line or line.startswith("#"):
            continue
        try:
            check_key(line)
        except ValueError as exc:
            raise ConfigError(f"the key file {path} is malformed: line {number} {exc}") from None
        if line not in keys:
            keys.append(line)
    if not keys:
        raise ConfigError(f"the key file {path} holds no keys")
    return keys


def create_key_file(path: Path, key: str) -> bool:
    """Create ``path`` holding ``key`` if there is no such file; True if this call made it.

    A hard link appears atomically and fails if the file exists: when two processes
    start at once, exactly one key file wins and both use it.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = _write_private_temp(path, [key])
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    log.info("generated a new secret key file at %s", path)
    return True


def write_key_file(path: Path, keys: Sequence[str]) -> None:
    """Replace ``path`` by a file holding ``keys`` (mode 0600, atomic rename)."""
    tmp = _write_private_temp(path, keys)
    os.replace(tmp, path)


def _write_private_temp(path: Path, keys: Sequence[str]) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write("".join(f"{key}\n" for key in keys))
        handle.flush()
        os.fsync(handle.fileno())
    return tmp


def _repair_permissions(path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("key file %s was readable by others (mode %o); set it to 0600", path, mode)
            path.chmod(0o600)
    except OSError as exc:  # not ours to change: say so, the keys are still usable
        log.warning("cannot make the key file %s private: %s", path, exc.strerror)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serialize rewrites of the key file ``path`` between processes (flock on a side
    file; a no-op where flock is missing)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if fcntl is None:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
