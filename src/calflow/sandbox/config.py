"""Configuration and shared runtime of the sandbox (faults, clock, randomness)."""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


@dataclass
class SandboxConfig:
    """How a sandbox instance behaves.

    Attributes:
        seed: number of bookings seeded into each simulator at start.
        random_seed: seed of every pseudo-random choice (seed data, uids, faults).
        fail_rate: probability in [0, 1] that an API request is answered by an
            injected 500/502/503 before it touches any state.
        latency_ms: delay added to every API request.
        rate_limit_per_min: requests per 60 s window per API key; 0 disables.
        rate_limit_block_s: how long a key stays blocked after exceeding the limit.
        api_key: the Cal.com API key accepted by the sandbox; generated
            (``cal_live_<hex>``) when ``None``.
        webhook_timeout_s: timeout of one webhook delivery attempt.
        calcom_meeting_payload: the shape of Cal.com's MEETING_STARTED / MEETING_ENDED
            bodies: ``nested`` (current Cal.com, ``{triggerEvent, createdAt, payload}``)
            or ``flat`` (older senders, ``{triggerEvent, ...booking row}``); changeable at
            run time with ``POST /_sandbox/calcom/options``.
        savvycal_token: the SavvyCal personal token accepted by the sandbox; generated
            (``pt_secret_<hex>``) when ``None``.
        savvycal_rate_limit_per_min: SavvyCal requests per 60 s per token; 0 disables.
        savvycal_seed: events seeded into SavvyCal; ``None`` means ``seed``. SavvyCal
            seeds 100k events in ~2 s, Cal.com ~10 s per 10k, so large SavvyCal
            histories get their own count.
        twilio_account_sid: the Twilio Account SID accepted by the sandbox; generated
            (``AC<32 hex>``) when ``None``.
        twilio_auth_token: the Twilio auth token accepted; generated when ``None``.
        twilio_slow_s: how long the slow magic number (``+15005550504``) holds the
            answer after the message was created.
        twilio_mps: how many segments per second each Twilio sender (From number or
            Messaging Service) sends; a message waits ``queued``, with no ``date_sent``,
            until its turn (a US long code: 1). 0: no limit, a message is sent and
            delivered as it is created. Changeable at run time with
            ``POST /_sandbox/twilio/options``.
        smtp_host: where the SMTP sink listens.
        smtp_port: the SMTP sink's port (0: any free port); ``None``: no sink is started.
        smtp_username: with ``smtp_password``, the login the sink requires (``None``: none).
        smtp_password: the sink's password.
        clock_start: the sandbox's "now" when it starts (and again after a reset), from
            which its clock ticks at the real pace; ``None``: the real clock. Tests pin
            it so that slots, seed data and "past" or "too early" never depend on the
            day or the hour they run.
    """

    seed: int = 0
    random_seed: int = 42
    fail_rate: float = 0.0
    latency_ms: float = 0.0
    rate_limit_per_min: int = 120
    rate_limit_block_s: float = 60
    api_key: str | None = None
    webhook_timeout_s: float = 10
    calcom_meeting_payload: str = "nested"
    savvycal_token: str | None = None
    savvycal_rate_limit_per_min: int = 0
    savvycal_seed: int | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_slow_s: float = 5.0
    twilio_mps: float = 0.0
    smtp_host: str = "127.0.0.1"
    smtp_port: int | None = None
    smtp_username: str | None = None
    smtp_password: str | None = None
    clock_start: datetime | None = None

    def __post_init__(self) -> None:
        if self.api_key is None:
            self.api_key = f"cal_live_{secrets.token_hex(16)}"
        if self.savvycal_token is None:
            self.savvycal_token = f"pt_secret_{secrets.token_hex(20)}"
        if self.twilio_account_sid is None:
            self.twilio_account_sid = f"AC{secrets.token_hex(16)}"
        if self.twilio_auth_token is None:
            self.twilio_auth_token = secrets.token_hex(16)
        if not 0 <= self.twilio_mps < 1e6:
            raise ValueError("twilio_mps must be from 0 (no limit) below 1000000")
        if self.clock_start is not None and self.clock_start.utcoffset() is None:
            raise ValueError("clock_start must be an aware datetime")

    @property
    def resolved_api_key(self) -> str:
        """The API key, never ``None`` after construction."""
        assert self.api_key is not None
        return self.api_key

    @property
    def resolved_savvycal_seed(self) -> int:
        """How many SavvyCal events to seed."""
        return self.seed if self.savvycal_seed is None else self.savvycal_seed

    @property
    def resolved_savvycal_token(self) -> str:
        """The SavvyCal personal token, never ``None`` after construction."""
        assert self.savvycal_token is not None
        return self.savvycal_token

    @property
    def resolved_twilio_account_sid(self) -> str:
        """The Twilio Account SID, never ``None`` after construction."""
        assert self.twilio_account_sid is not None
        return self.twilio_account_sid

    @property
    def resolved_twilio_auth_token(self) -> str:
        """The Twilio auth token, never ``None`` after construction."""
        assert self.twilio_auth_token is not None
        return self.twilio_auth_token


@dataclass
class SandboxRuntime:
    """Mutable state shared by every simulator: faults (``twilio_slow_s``: how long the
    slow magic number holds its answer now), clock offset, randomness."""

    config: SandboxConfig
    fail_rate: float = 0.0
    latency_ms: float = 0.0
    twilio_slow_s: float = 0.0
    clock_offset_s: float = 0.0
    fault_rng: random.Random = field(default_factory=random.Random)
    clock_started: float = field(default_factory=time.monotonic)

    @classmethod
    def from_config(cls, config: SandboxConfig) -> SandboxRuntime:
        """A runtime initialised from ``config``."""
        return cls(
            config=config,
            fail_rate=config.fail_rate,
            latency_ms=config.latency_ms,
            twilio_slow_s=config.twilio_slow_s,
            fault_rng=random.Random(config.random_seed + 1),
        )

    def now(self) -> datetime:
        """The sandbox's notion of now (UTC, shifted by ``POST /_sandbox/clock``): the real
        clock, or ``config.clock_start`` plus the time elapsed since the (re)start."""
        start = self.config.clock_start
        if start is None:
            base = datetime.now(UTC)
        else:
            elapsed = time.monotonic() - self.clock_started
            base = start.astimezone(UTC) + timedelta(seconds=elapsed)
        return base + timedelta(seconds=self.clock_offset_s)

    def reset(self) -> None:
        """Restore faults and clock to the configured values."""
        self.fail_rate = self.config.fail_rate
        self.latency_ms = self.config.latency_ms
        self.twilio_slow_s = self.config.twilio_slow_s
        self.clock_offset_s = 0.0
        self.clock_started = time.monotonic()
        self.fault_rng = random.Random(self.config.random_seed + 1)
