"""What an action or fetcher gets to work with: its integration, an HTTP client, a sink."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from calflow.errors import ConfigError
from calflow.flowapp.http import RetryPolicy
from calflow.netpolicy import Allowance, operator_allowance

if TYPE_CHECKING:
    from calflow.flowapp.app import App
    from calflow.integrations import Integration


@dataclass(frozen=True)
class BookingChange:
    """A booking change an action made, handed to the event bus by the runner's sink.

    ``kind`` is created / rescheduled / cancelled / approved / declined / no_show_updated
    / guests_added; ``booking`` is the provider's booking object as returned; ``input`` is
    what the action was given (it carries the attendee phone the provider may not echo).
    """

    provider: str
    kind: str
    booking: Mapping[str, Any]
    integration_id: str | None
    input: Mapping[str, Any] = field(default_factory=dict)
    previous_uid: str | None = None


BookingSink = Callable[[BookingChange], Awaitable[None]]
IntegrationSaver = Callable[
    ["Integration", Mapping[str, Any] | None, Mapping[str, str] | None, Sequence[str]],
    "Integration",
]


@dataclass
class ActionContext:
    """Per-call context: the app, the integration's values, HTTP and the booking sink."""

    app: App
    integration: Integration | None
    http: httpx.AsyncClient
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sink: BookingSink | None = None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("calflow.action"))
    changes: list[BookingChange] = field(default_factory=list)
    saver: IntegrationSaver | None = None
    allowance: Allowance | None = None
    """Non-public targets the operator allows (None: ``CALFLOW_ALLOW_PRIVATE``)."""

    @property
    def targets(self) -> Allowance:
        """The operator's allowance for this call (see :mod:`calflow.netpolicy`)."""
        if self.allowance is None:
            self.allowance = operator_allowance()
        return self.allowance

    def value(self, key: str) -> Any:
        """An integration field's value (secrets revealed), else the field's default."""
        if self.integration is not None:
            found = self.integration.value(key)
            if found not in (None, ""):
                return found
        for f in self.app.credential_fields:
            if f.key == key:
                return f.default
        return None

    def require(self, key: str) -> str:
        """A field that must be set; a clear ``ConfigError`` when it is not."""
        found = self.value(key)
        if found in (None, ""):
            who = f"integration {self.integration.name!r}" if self.integration else "no integration"
            raise ConfigError(f"{who} has no {key!r} set for app {self.app.key!r}")
        return str(found)

    async def save_secrets(self, secrets: Mapping[str, str]) -> None:
        """Store new secret values (refreshed tokens, webhook secrets) in the vault."""
        await self.save(secrets=secrets)

    async def save(
        self,
        config: Mapping[str, Any] | None = None,
        secrets: Mapping[str, str] | None = None,
        unset: Sequence[str] = (),
    ) -> None:
        """Merge new values into the integration (secrets go to the vault); drop ``unset``."""
        if self.integration is None:
            raise ConfigError(f"app {self.app.key!r} has no integration to save values in")
        if self.saver is None:
            raise ConfigError("this context cannot save values (no integration store)")
        self.integration = self.saver(self.integration, config, secrets, unset)

    async def booking_changed(self, change: BookingChange) -> None:
        """Report a booking change this action made (published through the event bus)."""
        self.changes.append(change)
        if self.sink is not None:
            await self.sink(change)
