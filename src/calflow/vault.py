"""The vault: credentials encrypted at rest with Fernet, with key rotation.

Keys come from ``CALFLOW_SECRET_KEYS`` (comma-separated) or, when that is not
set, from the key file ``<home>/secret.key`` (one key per line), generated on
first use with mode 0600. In both cases the first key encrypts and every key
decrypts (``MultiFernet``), so a new key can be put in front while tokens
written under older keys stay readable.

Nothing here ever puts a key or a plaintext secret into a repr, an exception
or a log record.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr
from sqlalchemy import Engine, select, update

from calflow.db.engine import write_transaction
from calflow.db.models import IntegrationRow
from calflow.errors import ConfigError
from calflow.settings import Settings

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = ["ENV_SOURCE", "KEY_FILE_NAME", "RotationResult", "Vault", "rotate_keys"]

log = logging.getLogger(__name__)

KEY_FILE_NAME = "secret.key"
ENV_SOURCE = "env"
"""``Vault.keys_source`` when the keys come from ``CALFLOW_SECRET_KEYS``."""
_ENV_VAR = "CALFLOW_SECRET_KEYS"


class Vault:
    """Encrypts and decrypts JSON objects of secret strings with ``MultiFernet``.

    ``keys``: Fernet keys (url-safe base64 of 32 bytes), the first encrypts.
    ``key_file``: where the keys were read from, if from a file; a token that
    none of the keys opens makes the vault re-read the file once (another
    process may have rotated the keys since).
    """

    def __init__(
        self, keys: Sequence[str | bytes], *, key_file: Path | None = None, source: str = "memory"
    ) -> None:
        self._key_file = key_file
        self._source = str(key_file) if key_file is not None else source
        self._fernet = _multi_fernet(keys, self._source)
        self._key_count = len(keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> Vault:
        """The vault configured by ``settings``: env keys, else the key file (created if absent)."""
        env_keys = _split_keys(settings.secret_key_text())
        if env_keys:
            return cls(env_keys, source=ENV_SOURCE)
        path = Path(settings.home) / KEY_FILE_NAME
        return cls(_load_or_create_key_file(path), key_file=path)

    @staticmethod
    def generate_key() -> str:
        """A new random Fernet key."""
        return Fernet.generate_key().decode("ascii")

    @property
    def keys_source(self) -> str:
        """Where the keys came from: ``"env"`` (``CALFLOW_SECRET_KEYS``) or the key file's path."""
        return self._source

    @property
    def key_file(self) -> Path | None:
        """The key file, when the keys came from one."""
        return self._key_file

    def encrypt_json(self, values: Mapping[str, str]) -> str:
        """One token holding the JSON of ``values`` (str → str), under the first key."""
        for key, value in values.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"secret field {key!r} must map a string to a string")
        payload = json.dumps(dict(values), sort_keys=True, separators=(",", ":"))
        return self._fernet.encrypt(payload.encode("utf-8")).decode("ascii")

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

    def rotate_token(self, token: str) -> str:
        """``token`` re-encrypted under the first key (raises ``ConfigError`` if unreadable)."""
        self._decrypt(token)
        return self._fernet.rotate(token.encode("ascii")).decode("ascii")

    def _decrypt(self, token: str) -> bytes:
        try:
            return self._open(token)
        except InvalidToken:
            if not self._reload_key_file():
                raise self._wrong_key_error() from None
        try:
            return self._open(token)
        except InvalidToken:
            raise self._wrong_key_error() from None

    def _open(self, token: str) -> bytes:
        try:
            raw = token.encode("ascii")
        except (UnicodeEncodeError, AttributeError):
            raise InvalidToken from None
        return self._fernet.decrypt(raw)

    def _reload_key_file(self) -> bool:
        if self._key_file is None or not self._key_file.exists():
            return False
        keys = _read_key_file(self._key_file)
        self._fernet = _multi_fernet(keys, self._source)
        self._key_count = len(keys)
        log.info("re-read the key file %s after an unreadable token", self._key_file)
        return True

    def _wrong_key_error(self) -> ConfigError:
        return ConfigError(
            "cannot decrypt stored secrets: the secret key is wrong or missing "
            f"(keys from {self._source}); set {_ENV_VAR} to the keys in use when the "
            "secrets were saved, or restore the key file"
        )

    def __repr__(self) -> str:
        return f"Vault(keys_source={self._source!r}, keys={self._key_count})"


@dataclass(frozen=True)
class RotationResult:
    """What :func:`rotate_keys` did.

    ``reencrypted``: integration rows re-encrypted under the new key.
    ``keys_source``: ``"env"`` or the key file's path.
    ``new_secret_keys``: with env keys only, the value ``CALFLOW_SECRET_KEYS``
    must be set to (new key first, old keys after); masked in reprs.
    """

    reencrypted: int
    keys_source: str
    new_secret_keys: SecretStr | None = field(default=None)


def rotate_keys(engine: Engine, settings: Settings) -> RotationResult:
    """Generate a new key, make it the encrypting key, and re-encrypt every integration.

    With a key file: the new key is written as the file's first line and the
    previous keys are kept after it (other running processes re-read the file
    when they meet a token under the new key). Then every integration row, in
    every workspace, is re-encrypted under the new key in one transaction. If
    re-encryption fails, nothing is lost: the old keys still decrypt the rows.

    With ``CALFLOW_SECRET_KEYS``: the rows are re-encrypted under a newly
    generated key and the result's ``new_secret_keys`` holds the new comma list
    (new key first, old keys after). The operator MUST set
    ``CALFLOW_SECRET_KEYS`` to that value for every calflow process before
    restarting it: until then other processes cannot read the re-encrypted
    rows, and if the value is lost the stored secrets are lost with it. Once
    every row is under the new key the old keys may be dropped from the list.
    """
    new_key = Vault.generate_key()
    env_keys = _split_keys(settings.secret_key_text())
    if env_keys:
        keys = [new_key, *env_keys]
        count = _reencrypt_all(engine, Vault(keys, source=ENV_SOURCE))
        log.info("re-encrypted %d integrations under a new key; update %s", count, _ENV_VAR)
        return RotationResult(count, ENV_SOURCE, SecretStr(",".join(keys)))
    path = Path(settings.home) / KEY_FILE_NAME
    with _key_file_lock(path):
        old_keys = _load_or_create_key_file(path)
        keys = [new_key, *old_keys]
        _write_key_file(path, keys)
    log.info("added a new first key to %s", path)
    count = _reencrypt_all(engine, Vault(keys, key_file=path))
    log.info("re-encrypted %d integrations under the new key", count)
    return RotationResult(count, str(path))


def _reencrypt_all(engine: Engine, vault: Vault) -> int:
    count = 0
    with write_transaction(engine) as conn:
        rows = conn.execute(
            select(IntegrationRow.id, IntegrationRow.secrets).with_for_update()
        ).all()
        for row_id, token in rows:
            try:
                rotated = vault.rotate_token(token)
            except ConfigError as exc:
                raise ConfigError(f"integration {row_id}: {exc.message}") from None
            conn.execute(
                update(IntegrationRow).where(IntegrationRow.id == row_id).values(secrets=rotated)
            )
            count += 1
    return count


def _split_keys(value: str | None) -> list[str]:
    return [k.strip() for k in (value or "").split(",") if k.strip()]


def _multi_fernet(keys: Sequence[str | bytes], source: str) -> MultiFernet:
    if not keys:
        raise ConfigError(f"no secret keys found in {source}")
    fernets = []
    for number, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError):
            raise ConfigError(
                f"secret key #{number} from {source} is not a valid Fernet key "
                "(expected 32 url-safe base64-encoded bytes)"
            ) from None
    return MultiFernet(fernets)


def _read_key_file(path: Path) -> list[str]:
    _check_permissions(path)
    keys = [line.strip() for line in path.read_text("ascii").splitlines()]
    return [k for k in keys if k and not k.startswith("#")]


def _load_or_create_key_file(path: Path) -> list[str]:
    """The keys in ``path``; a new file with one fresh key if there is none."""
    if not path.exists():
        _create_key_file(path)
    keys = _read_key_file(path)
    if not keys:
        raise ConfigError(f"the key file {path} holds no keys")
    return keys


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = _write_private_temp(path, [Vault.generate_key()])
    try:
        # A hard link appears atomically and fails if the file exists: when two
        # processes start at once, exactly one key file wins and both use it.
        os.link(tmp, path)
        log.info("generated a new secret key file at %s", path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def _write_key_file(path: Path, keys: Sequence[str]) -> None:
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


def _check_permissions(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("key file %s was readable by others (mode %o); set it to 0600", path, mode)
        path.chmod(0o600)


@contextmanager
def _key_file_lock(path: Path) -> Iterator[None]:
    """Serialize key-file rewrites between processes (a no-op where flock is missing)."""
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
