"""Declarations an app makes: credential fields, auth modes, output ports, options, results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CredentialField:
    """One field an integration of this app stores (``secret`` ones are encrypted at rest)."""

    key: str
    label: str
    secret: bool = False
    required: bool = False
    default: str | None = None
    description: str = ""
    placeholder: str = ""
    choices: tuple[str, ...] = ()
    """The only values the field takes (empty: any value of its ``kind``)."""
    kind: str = "text"
    """What the value is, checked whenever it is set (:mod:`calflow.flowapp.values`):
    ``text``, ``url``, ``phone`` (E.164), ``sender`` (E.164, short code or alphanumeric
    sender ID), ``time_zone`` (IANA), ``boolean``, ``integer``, ``port``, ``number``
    (positive) or ``country`` (two letters)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "secret": self.secret,
            "required": self.required,
            "default": self.default,
            "description": self.description,
            "placeholder": self.placeholder,
            "choices": list(self.choices),
            "kind": self.kind,
        }


@dataclass(frozen=True)
class AuthMode:
    """One way to authenticate: every field in ``fields`` must be set."""

    key: str
    label: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class OutputPort:
    """A named outcome of an action; workflows branch on it.

    ``error`` ports carry failures (``ActionResult.success`` is false); every other
    port is an answer the caller can act on (``conflict``, ``not_found``…).
    """

    key: str
    description: str = ""
    error: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "description": self.description, "error": self.error}


SUCCESS = OutputPort("success", "The request succeeded.")
ERROR = OutputPort("error", "The request failed; code and message say why.", error=True)
NOT_FOUND = OutputPort("not_found", "The provider has no such record.")
CONFLICT = OutputPort("conflict", "The time is taken or not bookable.")
SKIPPED_ROUTE = "skipped"
"""Not a port: the route a workflow step takes when it is skipped (``skip_if_past``), so
no action may declare a port of this name."""


@dataclass(frozen=True)
class Option:
    """One choice a data fetcher offers for a form field."""

    value: Any
    label: str
    description: str = ""
    data: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "label": self.label}
        if self.description:
            out["description"] = self.description
        if self.data is not None:
            out["data"] = self.data
        return out


@dataclass
class ActionResult:
    """What an action produced: a port with data, or a failure with a code and message."""

    success: bool
    port: str
    data: Any = None
    code: str | None = None
    message: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def ok(
        cls,
        data: Any = None,
        port: str = "success",
        *,
        code: str | None = None,
        message: str | None = None,
    ) -> ActionResult:
        """A result the caller can act on, on ``port`` (``success`` by default)."""
        return cls(success=True, port=port, data=data, code=code, message=message)

    @classmethod
    def fail(cls, code: str, message: str, data: Any = None, port: str = "error") -> ActionResult:
        """A failure: ``code`` sorts it (AUTH_ERROR, RATE_LIMIT…), ``message`` explains it."""
        return cls(success=False, port=port, data=data, code=code, message=message)

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "port": self.port,
            "data": self.data,
            "code": self.code,
            "message": self.message,
        }
