"""Process-wide settings, read from ``CALFLOW_*`` environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from calflow.errors import ConfigError


def _default_home() -> Path:
    return Path.home() / ".local" / "share" / "calflow"


def _is_default(model: type[BaseSettings], info: ValidationInfo, value: object) -> bool:
    """Whether ``value`` is the default of the field being validated."""
    field = model.model_fields.get(info.field_name or "")
    return field is not None and value == field.default


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
    header_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    """``calflow serve``: a client has this long to send a request's line and headers,
    counted from the connection's opening or the request's first byte (408, closed)."""
    body_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    """``calflow serve``: a client has this long to send a request's whole body, counted
    from the end of its headers (408, closed)."""
    keep_alive_s: int = Field(default=5, ge=1, le=3600)
    """``calflow serve``: an idle keep-alive connection is closed after this long."""
    max_connections: int = Field(default=1000, ge=1, le=1_000_000)
    """``calflow serve``: open connections; past it the longest-idle or slowest connection
    still sending headers is closed, or, when every one has a request in flight, the new
    one is answered 503 with ``Retry-After``."""
    max_requests: int = Field(default=256, ge=1, le=1_000_000)
    """``calflow serve``: requests in flight (a webhook, an API call, MCP); past it 503
    with ``Retry-After``. ``/healthz`` is not counted: it has ``health_reserve``."""
    health_reserve: int = Field(default=8, ge=1, le=10_000)
    """``calflow serve``: connections and requests beyond the limits kept for
    ``GET /healthz``."""
    busy_retry_after_s: int = Field(default=2, ge=1, le=3600)
    """The ``Retry-After`` of a 503 answered at the connection or in-flight limit."""
    api_rate_limit: str = "20/second;600/minute"
    """Requests per API token (REST API and MCP), in the ``limits`` package's notation
    (``100/minute``, several separated by ``;``); empty for none. Past it 429 with
    ``Retry-After``. Counted in the serving process (``calflow.server.ratelimit``)."""

    keep_runs: str = "30d"
    """Finished runs (succeeded, failed, cancelled; action runs too) and their step
    traces are pruned this long after they finished; ``0`` or ``forever`` keeps them."""
    keep_events: str = "30d"
    """Events are pruned this long after they were received, once no run refers to them
    (waiting runs keep theirs)."""
    keep_deliveries: str = "7d"
    """Duplicate delivery records (a retry, the webhook of calflow's own booking) are
    pruned this long after they arrived; the event keeps counting them."""
    keep_replays: str = "30d"
    """Replay jobs that are not running, with their per-item outcomes, are pruned this
    long after they last changed."""
    prune_every_s: float = Field(default=3600.0, gt=0, le=7 * 86400)
    """How often ``calflow serve`` and ``calflow worker`` prune (``calflow.retention``)."""

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """``calflow serve`` and ``calflow worker``: the least severe log line written."""
    log_format: Literal["text", "json"] = "text"
    """``calflow serve`` and ``calflow worker``: log lines as text or one JSON object each."""
    metrics_token: SecretStr | None = None
    """``GET /metrics`` answers only with ``Authorization: Bearer <this>``; unset, it is
    off (404): the counters add up every workspace (``calflow.server.metrics_route``)."""

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("keep_runs", "keep_events", "keep_deliveries", "keep_replays")
    @classmethod
    def _an_age(cls, value: str, info: ValidationInfo) -> str:
        if _is_default(cls, info, value):  # known good: spare every command the import
            return value
        from calflow.retention import parse_age

        parse_age(value)
        return value

    @field_validator("allow_private", "api_rate_limit")
    @classmethod
    def _parses(cls, value: str, info: ValidationInfo) -> str:
        if _is_default(cls, info, value):  # known good: spare every command the import
            return value
        # the modules that parse these read the settings: imported here, not at the top
        from calflow.netpolicy import parse_allowance
        from calflow.server.ratelimit import parse_rate

        parse = parse_allowance if info.field_name == "allow_private" else parse_rate
        try:
            parse(value)
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
        raise _invalid(exc) from None


def overridden(settings: Settings, values: Mapping[str, object]) -> Settings:
    """``settings`` with the ``values`` that are not None (a command's flags), checked by
    the same rules; a value that breaks one is a ``ConfigError`` naming the setting."""
    given = {name: value for name, value in values.items() if value is not None}
    if not given:
        return settings
    try:
        return Settings.model_validate({**settings.model_dump(), **given})
    except PydanticValidationError as exc:
        raise _invalid(exc) from None


def _invalid(exc: PydanticValidationError) -> ConfigError:
    problems = "; ".join(
        f"CALFLOW_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
    )
    return ConfigError(f"invalid settings: {problems}")
