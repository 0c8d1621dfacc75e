"""One error hierarchy, sorted by what the caller should do.

- ``ConfigError``: fix the configuration (unknown app, missing credential, bad settings).
- ``ValidationError``: fix the input; carries per-field problems.
- ``AuthError``: fix the credentials (401/403 from a provider).
- ``RetryableError``: try again later, after ``retry_after`` seconds when known.
- ``FatalProviderError``: the provider refused for good; ``status`` and ``body`` say why.
- ``NotFoundError``: the named thing (app, action, integration…) does not exist.

A ``ValidationError``'s message and each field's path and message quote at most
``QUOTE_MAX`` characters (:func:`clip`): an error never echoes a large input back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

QUOTE_MAX = 300


def clip(text: str, limit: int = QUOTE_MAX) -> str:
    """``text``, cut to ``limit`` characters with how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


class CalflowError(Exception):
    """Root of every error calflow raises on purpose."""

    code = "ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


class InternalError(CalflowError):
    """A bug in calflow or an app: reported with its message, never as a traceback."""

    code = "INTERNAL_ERROR"


class ConfigError(CalflowError):
    """The configuration is wrong or incomplete: the operator must fix it."""

    code = "CONFIG_ERROR"


class NotFoundError(ConfigError):
    """A named app, action, fetcher, integration or record does not exist."""

    code = "NOT_FOUND"


@dataclass(frozen=True)
class FieldError:
    """One problem with one input field (``path`` is a JSON-pointer-like dotted path)."""

    path: str
    message: str
    rule: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", clip(self.path))
        object.__setattr__(self, "message", clip(self.message))

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message, "rule": self.rule}


class ValidationError(CalflowError):
    """The input is invalid; ``errors`` lists each field and rule that failed."""

    code = "VALIDATION_ERROR"

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(clip(message))
        self.errors: list[FieldError] = list(errors or [])

    def __str__(self) -> str:
        if not self.errors:
            return self.message
        lines = [self.message] + [f"  {e.path or '(root)'}: {e.message}" for e in self.errors]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "errors": [e.to_dict() for e in self.errors]}


class AuthError(CalflowError):
    """The provider rejected the credentials (401/403)."""

    code = "AUTH_ERROR"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetryableError(CalflowError):
    """A transient failure: rate limit, 5xx, timeout, connection error."""

    code = "RETRYABLE"

    def __init__(
        self, message: str, retry_after: float | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class RateLimitError(RetryableError):
    """The provider's rate limit was hit (429)."""

    code = "RATE_LIMIT"


class FatalProviderError(CalflowError):
    """The provider refused the request for good (a 4xx other than auth/rate limit)."""

    code = "PROVIDER_ERROR"

    def __init__(self, message: str, status: int, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "status": self.status}
