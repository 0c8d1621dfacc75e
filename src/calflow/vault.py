"""The vault: credentials encrypted at rest with Fernet, under several keys for rotation.

Keys come from ``CALFLOW_SECRET_KEYS`` (comma-separated) or, when that is not set, from
the key file ``<home>/secret.key`` (one key per line), generated on first use with mode
0600 (:mod:`calflow.keys.keyfile`). Every key decrypts; one encrypts: the key the
database records as primary when this process holds it, else the first
(:class:`calflow.keys.ring.KeyRing`). A process picks up a changed key file without a
restart. ``calflow keys`` adds, rotates and retires keys while processes run
(:mod:`calflow.keys.rotation`).

The vaults of one process built from the same settings share one ``KeyRing``, so the
heartbeat that keeps a server's or worker's keys current (:mod:`calflow.keys.watch`)
keeps every store of that process current.

Nothing here ever puts a key or a plaintext secret into a repr, an exception or a log
record.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from calflow.errors import ConfigError
from calflow.keys.keyfile import KEY_FILE_NAME, key_file_path
from calflow.keys.ring import ENV_SOURCE, KeyRing, key_id
from calflow.settings import Settings

__all__ = [
    "ENV_SOURCE",
    "ENV_VAR",
    "KEY_FILE_NAME",
    "Vault",
    "key_id",
    "shared_ring",
    "split_keys",
]

ENV_VAR = "CALFLOW_SECRET_KEYS"

_rings: dict[tuple[str, str], KeyRing] = {}
_rings_lock = threading.Lock()


def split_keys(value: str | None) -> list[str]:
    """The keys of a ``CALFLOW_SECRET_KEYS`` value (comma-separated, blanks ignored)."""
    return [k.strip() for k in (value or "").split(",") if k.strip()]


def shared_ring(settings: Settings, *, create: bool = True) -> KeyRing:
    """The key ring of ``settings`` in this process (one per key source).

    From ``CALFLOW_SECRET_KEYS`` when it is set, else from the key file (created when
    absent and ``create``). Raises ``ConfigError`` for an unreadable or malformed file,
    or a value that is no Fernet key.
    """
    env_text = settings.secret_key_text()
    env_keys = split_keys(env_text)
    if env_keys:
        digest = hashlib.sha256(",".join(env_keys).encode("utf-8")).hexdigest()
        cache_key = (ENV_SOURCE, digest)
        with _rings_lock:
            ring = _rings.get(cache_key)
            if ring is None:
                ring = _rings[cache_key] = KeyRing(env_keys, source=ENV_SOURCE)
            return ring
    path = key_file_path(settings).absolute()
    cache_key = ("file", str(path))
    with _rings_lock:
        ring = _rings.get(cache_key)
        if ring is None or not path.exists():
            ring = _rings[cache_key] = KeyRing.from_file(path, create=create)
        return ring


class Vault:
    """Encrypts and decrypts JSON objects of secret strings with a :class:`KeyRing`.

    ``keys``: Fernet keys (url-safe base64 of 32 bytes), the first encrypts; or
    ``ring``: a ring to share. ``key_file``: where the keys were read from, if from a
    file (the ring then re-reads it when it changes).
    """

    def __init__(
        self,
        keys: Sequence[str | bytes] = (),
        *,
        key_file: Path | None = None,
        source: str = "memory",
        ring: KeyRing | None = None,
    ) -> None:
        self._ring = ring or KeyRing(keys, source=source, key_file=key_file)

    @classmethod
    def from_settings(cls, settings: Settings, *, create: bool = True) -> Vault:
        """The vault configured by ``settings``: env keys, else the key file (created if
        absent and ``create``); it shares the process's ring for that key source."""
        return cls(ring=shared_ring(settings, create=create))

    @staticmethod
    def generate_key() -> str:
        """A new random Fernet key."""
        return Fernet.generate_key().decode("ascii")

    @property
    def ring(self) -> KeyRing:
        """The keys this vault uses."""
        return self._ring

    @property
    def keys_source(self) -> str:
        """Where the keys came from: ``"env"`` (``CALFLOW_SECRET_KEYS``) or the key file's path."""
        return self._ring.source

    @property
    def key_file(self) -> Path | None:
        """The key file, when the keys came from one."""
        return self._ring.key_file

    def encrypt_json(self, values: Mapping[str, str]) -> str:
        """One token holding the JSON of ``values`` (str → str), under the primary key."""
        for key, value in values.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"secret field {key!r} must map a string to a string")
        payload = json.dumps(dict(values), sort_keys=True, separators=(",", ":"))
        return self._ring.encrypt(payload.encode("utf-8")).decode("ascii")

    def decrypt_json(self, token: str) -> dict[str, str]:
        """The object :meth:`encrypt_json` encrypted into ``token``.

        Raises ``ConfigError`` when no key opens the token (wrong or missing
        key) or the content is malformed; the message never includes the token.
        """
        data = self._decrypt(token)
        try:
            values = json.loads(data)
        except ValueError:
            values = None
        if not isinstance(values, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in values.items()
        ):
            raise ConfigError("stored secrets are malformed: expected a JSON object of strings")
        return values

    def rotate_token(self, token: str, to: str | None = None) -> str:
        """``token`` re-encrypted under the key ``to`` (an id; default: the primary).

        Raises ``ConfigError`` if no key opens the token, ``KeyError`` if this vault
        does not hold ``to``."""
        plain = self._decrypt(token)
        return self._ring.fernet(to or self._ring.primary).encrypt(plain).decode("ascii")

    def _decrypt(self, token: str) -> bytes:
        try:
            return self._ring.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError, AttributeError):
            raise self._wrong_key_error() from None

    def _wrong_key_error(self) -> ConfigError:
        return ConfigError(
            "cannot decrypt stored secrets: the secret key is wrong or missing "
            f"(keys from {self._ring.source}); set {ENV_VAR} to the keys in use when the "
            "secrets were saved, or restore the key file"
        )

    def __repr__(self) -> str:
        return f"Vault(keys_source={self._ring.source!r}, keys={len(self._ring.ids)})"
