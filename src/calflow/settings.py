"""Process-wide settings, read from ``CALFLOW_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from calflow.errors import ConfigError


def _default_home() -> Path:
    return Path.home() / ".local" / "share" / "calflow"


class Settings(BaseSettings):
    """calflow settings.

    ``home``: data directory (SQLite file, generated key file).
    ``database_url``: SQLAlchemy URL; default is SQLite at ``home/calflow.db``.
    ``secret_keys``: comma-separated Fernet keys; all decrypt, the first encrypts unless
    ``calflow keys rotate`` recorded another one.
    ``keys_heartbeat_s``: how often a server or worker re-reads a changed key file and
    reports its keys in the database (``calflow keys`` waits for these reports).
    """

    model_config = SettingsConfigDict(env_prefix="CALFLOW_", extra="ignore")

    home: Path = Field(default_factory=_default_home)
    database_url: str | None = Field(default=None, repr=False)
    secret_keys: SecretStr | None = None
    keys_heartbeat_s: float = Field(default=10.0, gt=0, le=3600)
    http_timeout_s: float = 30.0
    max_retry_wait_s: float = 60.0
    max_retries: int = 3
    webhook_max_bytes: int = 1024 * 1024
    """Largest webhook body the receiver reads; bigger ones get 413 unread."""
    allow_private: str = ""
    """Non-public targets the operator allows integrations, steps and replays to call: a
    comma-separated list of networks (``192.168.1.0/24``), addresses or host names
    (``cal.lan``), ``*`` for all; empty (the default) allows none (``calflow.netpolicy``)."""
    public_url: str | None = None
    """calflow's public base URL (``https://calflow.example.com``): webhook URLs the API
    shows are built on it; without it, on the URL the API request came in on."""

    @field_validator("allow_private")
    @classmethod
    def _allowance_parses(cls, value: str) -> str:
        from calflow.netpolicy import parse_allowance  # netpolicy reads these settings

        try:
            parse_allowance(value)
        except ConfigError as exc:
            raise ValueError(exc.message.split(": ", 2)[-1]) from None
        return value

    def secret_key_text(self) -> str | None:
        """The raw ``CALFLOW_SECRET_KEYS`` value (kept masked in reprs)."""
        return self.secret_keys.get_secret_value() if self.secret_keys else None

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'calflow.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process (cached; call ``get_settings.cache_clear()`` in tests).

    A variable that does not parse is a ``ConfigError`` naming it and the rule."""
    try:
        return Settings()
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"CALFLOW_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None
