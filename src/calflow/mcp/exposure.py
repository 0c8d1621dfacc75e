"""Which actions a workspace exposes to MCP clients: ``settings["mcp"]["expose"]``.

An AI agent should be able to look things up and book, but not cancel or delete
unless someone decided it may. The setting is a list of patterns:

- ``SCOPE.ACTION``: SCOPE matches an integration name or an app key, ACTION an action
  key (``cancel_booking`` or ``CancelBooking``); both take shell wildcards (``*``).
- ACTION may be a kind instead: ``@read`` (no side effects), ``@write``,
  ``@destructive`` (cancels, deletes), ``@booking`` (the write actions of booking
  apps: Cal.com, SavvyCal), ``@all``. A bare ``@read`` means ``*.@read``.
- A leading ``!`` excludes: an action is exposed when some pattern without ``!``
  matches it and no pattern with ``!`` does.

Without the setting, ``["@read", "@booking", "!*.*webhook*"]`` applies: reads and
booking changes, nothing destructive, no webhook management, no SMS, email or HTTP
requests. ``calflow mcp expose add main.cancel_booking`` adds to that list: the agent
may then also cancel through the integration ``main``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from calflow.errors import FieldError, ValidationError
from calflow.events.normalize import PROVIDERS
from calflow.mcp.schema import snake

DEFAULT_EXPOSE: tuple[str, ...] = ("@read", "@booking", "!*.*webhook*")
KINDS = frozenset({"read", "write", "destructive", "booking", "all"})


@dataclass(frozen=True)
class Pattern:
    """One parsed pattern of the setting."""

    text: str
    exclude: bool
    scope: str
    action: str
    """A lower-case glob over snake-cased action keys, or ``@kind``."""

    def matches(self, app_key: str, integration_name: str, action_key: str, kind: str) -> bool:
        scope_ok = fnmatchcase(integration_name.lower(), self.scope) or fnmatchcase(
            app_key.lower(), self.scope
        )
        if not scope_ok:
            return False
        if not self.action.startswith("@"):
            return fnmatchcase(snake(action_key), self.action)
        wanted = self.action[1:]
        if wanted == "all":
            return True
        if wanted == "booking":
            return kind == "write" and app_key in PROVIDERS
        return kind == wanted


def parse(text: str) -> Pattern:
    """One pattern; ``ValidationError`` naming it when it is malformed."""
    raw = text.strip()
    exclude = raw.startswith("!")
    body = raw[1:].strip() if exclude else raw
    if body.startswith("@"):
        body = f"*.{body}"
    scope, dot, action = body.rpartition(".")
    problem = ""
    if not dot or not scope or not action:
        problem = "expected SCOPE.ACTION (e.g. main.cancel_booking, cal_com.*, @read)"
    elif action.startswith("@") and action[1:] not in KINDS:
        problem = f"unknown kind {action!r}; kinds: " + ", ".join(f"@{k}" for k in sorted(KINDS))
    if problem:
        raise ValidationError(
            f"invalid exposure pattern {text!r}", [FieldError("mcp.expose", problem, "format")]
        )
    action = action.lower() if action.startswith("@") else snake_glob(action)
    return Pattern(raw, exclude, scope.lower(), action)


def snake_glob(text: str) -> str:
    """An action glob in snake case, wildcards kept (``Cancel*`` → ``cancel*``)."""
    return "*".join(snake(part) for part in text.split("*"))


def parse_all(patterns: Iterable[str]) -> list[Pattern]:
    return [parse(p) for p in patterns]


def patterns_of(settings: Mapping[str, Any] | None) -> list[str]:
    """The workspace's patterns (the default when it has none)."""
    section = (settings or {}).get("mcp")
    expose = section.get("expose") if isinstance(section, Mapping) else None
    if not isinstance(expose, list):
        return list(DEFAULT_EXPOSE)
    return [str(p) for p in expose]


@dataclass(frozen=True)
class Exposure:
    """The parsed setting of one workspace."""

    patterns: tuple[Pattern, ...]

    @classmethod
    def of(cls, settings: Mapping[str, Any] | None) -> Exposure:
        return cls(tuple(parse_all(patterns_of(settings))))

    def allows(self, app_key: str, integration_name: str, action_key: str, kind: str) -> bool:
        hits = [p for p in self.patterns if p.matches(app_key, integration_name, action_key, kind)]
        return any(not p.exclude for p in hits) and not any(p.exclude for p in hits)
