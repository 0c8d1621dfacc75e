"""The keys one process holds: their ids, the one that encrypts, a changed key file re-read.

A :class:`KeyRing` holds Fernet keys in order. Every key decrypts; one encrypts: the
key the database records as primary (``prefer``), when this ring holds it, else the
first. A ring read from a key file looks at the file's stamp (device, inode, mtime,
size) on every use and re-reads it when it changed, so a process picks up a key added
or retired by ``calflow keys`` without a restart; a file that became unreadable or
malformed is reported (``problem``, an error in the log) and the keys loaded before are
kept, so no run fails because of it.

Keys are named by :func:`key_id`: 12 hex digits of a SHA-256 over the raw key, which
tell keys apart in the database, the CLI and logs without revealing them.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from calflow.errors import ConfigError
from calflow.keys.keyfile import Stamp, check_key, create_key_file, read_key_file, stamp

__all__ = ["ENV_SOURCE", "KeyRing", "key_id"]

log = logging.getLogger("calflow.vault")

ENV_SOURCE = "env"
"""``KeyRing.source`` when the keys come from ``CALFLOW_SECRET_KEYS``."""
_ID_DOMAIN = b"calflow key id\x00"


def key_id(key: str | bytes) -> str:
    """The public name of a Fernet key (``ValueError`` if ``key`` is not one)."""
    text = key.decode("ascii") if isinstance(key, bytes) else key
    return hashlib.sha256(_ID_DOMAIN + check_key(text)).hexdigest()[:12]


@dataclass(frozen=True)
class _Keys:
    keys: tuple[str, ...]
    ids: tuple[str, ...]
    fernets: tuple[Fernet, ...]


def _load(keys: Sequence[str | bytes], source: str) -> _Keys:
    texts: list[str] = []
    for number, key in enumerate(keys, start=1):
        try:
            text = key.decode("ascii") if isinstance(key, bytes) else str(key)
            check_key(text)
        except (UnicodeDecodeError, ValueError):
            raise ConfigError(
                f"secret key #{number} from {source} is not a valid Fernet key "
                "(expected 32 url-safe base64-encoded bytes)"
            ) from None
        if text not in texts:
            texts.append(text)
    if not texts:
        raise ConfigError(f"no secret keys found in {source}")
    return _Keys(tuple(texts), tuple(key_id(k) for k in texts), tuple(Fernet(k) for k in texts))


class KeyRing:
    """Fernet keys in order; see the module docstring.

    ``source``: ``"env"``, the key file's path, or a label for keys given in code.
    """

    def __init__(
        self,
        keys: Sequence[str | bytes],
        *,
        source: str = "memory",
        key_file: Path | None = None,
        file_stamp: Stamp | None = None,
    ) -> None:
        self._source = str(key_file) if key_file is not None else source
        self._key_file = key_file
        self._state = _load(keys, self._source)
        self._stamp = file_stamp
        self._bad_stamp: Stamp | None = None
        self._preferred: str | None = None
        self._problem: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: Path, *, create: bool = True) -> KeyRing:
        """The keys in the key file ``path`` (created with one new key if absent and
        ``create``); ``ConfigError`` if it cannot be read or is malformed."""
        if create and not path.exists():
            create_key_file(path, Fernet.generate_key().decode("ascii"))
        before = stamp(path)
        return cls(read_key_file(path), key_file=path, file_stamp=before)

    @property
    def source(self) -> str:
        """``"env"``, the key file's path, or the label given."""
        return self._source

    @property
    def key_file(self) -> Path | None:
        """The key file the keys come from, if they come from one."""
        return self._key_file

    @property
    def ids(self) -> tuple[str, ...]:
        """The ids of the keys, in order (after re-reading a changed key file)."""
        self.refresh()
        return self._state.ids

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys themselves, in order: only to write a key file or a key list."""
        self.refresh()
        return self._state.keys

    @property
    def primary(self) -> str:
        """The id of the key that encrypts: the preferred one if held, else the first."""
        ids = self.ids
        return self._preferred if self._preferred in ids else ids[0]

    @property
    def preferred(self) -> str | None:
        """The key id set by :meth:`prefer` (the database's primary), if any."""
        return self._preferred

    @property
    def problem(self) -> str | None:
        """Why the key file could not be re-read the last time it changed (None: fine)."""
        return self._problem

    def prefer(self, key: str | None) -> None:
        """Encrypt with the key ``key`` (an id) when this ring holds it; None: the first."""
        if key != self._preferred and key is not None and key not in self._state.ids:
            log.error(
                "the keys from %s do not include key %s, which the database records as the "
                "encrypting key; this process keeps encrypting with key %s",
                self._source, key, self._state.ids[0],
            )  # fmt: skip
        self._preferred = key

    def fernet(self, key: str) -> Fernet:
        """The Fernet of the key with id ``key`` (``KeyError`` if this ring lacks it)."""
        state = self._state
        return state.fernets[state.ids.index(key)] if key in state.ids else _missing(key)

    def encrypt(self, data: bytes) -> bytes:
        """``data`` encrypted under the primary key."""
        return self.fernet(self.primary).encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        """The plaintext of ``token`` under any key; ``InvalidToken`` if none opens it.

        A key file ring that opens nothing re-reads its file once (another process may
        have added the key since its last look)."""
        try:
            return self._open(token)
        except InvalidToken:
            if not self.refresh(force=True):
                raise
        return self._open(token)

    def key_of(self, token: bytes) -> str | None:
        """The id of the key that opens ``token``, or None if none of this ring's does."""
        state = self._state
        for kid, fernet in zip(state.ids, state.fernets, strict=True):
            try:
                fernet.decrypt(token)
            except InvalidToken:
                continue
            return kid
        return None

    def _open(self, token: bytes) -> bytes:
        primary = self.primary
        state = self._state
        order = sorted(range(len(state.ids)), key=lambda i: state.ids[i] != primary)
        for index in order:
            try:
                return state.fernets[index].decrypt(token)
            except InvalidToken:
                continue
        raise InvalidToken

    def refresh(self, force: bool = False) -> bool:
        """Re-read the key file if it changed (always, with ``force``); True if the keys
        changed. Never raises: a bad file keeps the keys loaded before (see ``problem``)."""
        path = self._key_file
        if path is None:
            return False
        current = stamp(path)
        if current == self._stamp and not force:
            return False
        with self._lock:
            if current == self._stamp and not force:
                return False
            try:
                state = _load(read_key_file(path), self._source)
            except ConfigError as exc:
                if current != self._bad_stamp:
                    log.error("%s; keeping the %d keys loaded before", exc.message,
                              len(self._state.ids))  # fmt: skip
                    self._bad_stamp = current
                self._problem = exc.message
                return False
            self._stamp, self._problem, self._bad_stamp = current, None, None
            changed = state.ids != self._state.ids
            self._state = state
        if changed:
            log.info("re-read the key file %s: keys %s", path, ", ".join(state.ids))
        return changed

    def __repr__(self) -> str:
        return f"KeyRing(source={self._source!r}, ids={list(self._state.ids)!r})"


def _missing(key: str) -> Fernet:
    raise KeyError(f"no key {key} in this process")
