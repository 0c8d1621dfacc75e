"""SavvyCal error bodies.

SavvyCal's error bodies vary by endpoint, and the simulator reproduces that variety:

* ``{"errors": [{"message": "..."}]}`` for 401, 404, 429, 500 and state conflicts;
* ``{"errors": {"field": [{"message": "..."}]}}`` for webhook URL validation;
* ``{"errors": {"field": ["text"]}}`` for booking and list-parameter validation (422).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

UNAUTHENTICATED = "Unauthenticated"
NOT_FOUND = "Not found"


class SavvycalError(Exception):
    """An error answered with a SavvyCal error body."""

    def __init__(
        self, status_code: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status_code}: {body}")
        self.status_code = status_code
        self.body = body
        self.headers = headers or {}


def message_error(status_code: int, message: str, **headers: str) -> SavvycalError:
    """``{"errors": [{"message": message}]}``."""
    return SavvycalError(status_code, {"errors": [{"message": message}]}, dict(headers))


def field_errors(errors: dict[str, list[str]]) -> SavvycalError:
    """422 ``{"errors": {"field": ["text", ...]}}``."""
    return SavvycalError(422, {"errors": {k: list(v) for k, v in errors.items()}})


def field_message_errors(errors: dict[str, list[str]]) -> SavvycalError:
    """422 ``{"errors": {"field": [{"message": "text"}, ...]}}``."""
    return SavvycalError(
        422, {"errors": {k: [{"message": m} for m in v] for k, v in errors.items()}}
    )


def unauthenticated() -> SavvycalError:
    """401 Unauthenticated."""
    return message_error(401, UNAUTHENTICATED)


def not_found() -> SavvycalError:
    """404 Not found."""
    return message_error(404, NOT_FOUND)


async def savvycal_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI exception handler rendering :class:`SavvycalError`."""
    assert isinstance(exc, SavvycalError)
    return JSONResponse(exc.body, status_code=exc.status_code, headers=exc.headers)
