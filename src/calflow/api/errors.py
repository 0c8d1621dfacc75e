"""One error shape for the whole API, and the one place calflow's errors become statuses.

Every non-2xx answer is ``{"error": {"code", "message", "details": [{"field",
"message"}]}}``. :func:`install` registers handlers so that a ``CalflowError`` raised
anywhere in a route, FastAPI's own request-validation errors and Starlette's HTTP
errors all come out in that shape, and an unexpected exception is a 503 with a reason
instead of a 500 with a traceback (the webhook receiver shares the shape through
``calflow.server.hooks.error``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from calflow.errors import (
    AuthError,
    CalflowError,
    ConfigError,
    FatalProviderError,
    FieldError,
    NotFoundError,
    RetryableError,
    ValidationError,
)
from calflow.logs import fields

log = logging.getLogger("calflow.api")

__all__ = [
    "ERROR_RESPONSES",
    "ApiError",
    "ErrorBody",
    "ErrorDetail",
    "Problem",
    "error_response",
    "from_calflow",
    "install",
    "note_error",
    "status_for",
]


class ErrorDetail(BaseModel):
    """One problem with one field of the request (``field`` is a dotted path)."""

    field: str
    message: str


class Problem(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. NOT_FOUND.")
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: Problem


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "The request cannot be carried out as sent (e.g. a configuration problem)."),
        (401, "No valid bearer token."),
        (404, "No such resource in this workspace."),
        (409, "The request conflicts with the current state (e.g. a name already taken)."),
        (413, "The body is too large."),
        (415, "The body's media type is not accepted."),
        (422, "The body, query or path is invalid; details lists each field."),
        (429, "The token's rate limit is reached (CALFLOW_API_RATE_LIMIT); see Retry-After."),
        (502, "The provider refused the request."),
        (503, "Try again later (Retry-After when known)."),
    )
}
"""The error answers every API route documents (schemathesis checks they conform)."""


class ApiError(CalflowError):
    """An error the API raises itself with an explicit status and code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Sequence[FieldError] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = list(details)
        self.headers = headers


def error_response(
    status: int,
    code: str,
    message: str,
    details: Iterable[FieldError] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """calflow's one error shape."""
    body = {
        "error": {
            "code": code,
            "message": message,
            "details": [{"field": d.path, "message": d.message} for d in details],
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def status_for(exc: CalflowError) -> int:
    """The HTTP status of a calflow error (sorted by what the caller should do)."""
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, ValidationError):
        return 422
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, AuthError):
        return 502  # the provider refused the integration's credentials, not the API token
    if isinstance(exc, RetryableError):
        return 503
    if isinstance(exc, FatalProviderError):
        return 502
    if isinstance(exc, ConfigError):
        return 409 if "already exists" in exc.message else 400
    return 503


def from_calflow(exc: CalflowError) -> JSONResponse:
    """The error answer for a calflow error."""
    status = status_for(exc)
    details: list[FieldError] = []
    if isinstance(exc, ValidationError):
        details = exc.errors
    elif isinstance(exc, ApiError):
        details = exc.details
    headers = exc.headers if isinstance(exc, ApiError) else None
    if isinstance(exc, RetryableError):
        headers = {"Retry-After": str(max(1, round(exc.retry_after or 1)))}
    code = exc.code
    if isinstance(exc, AuthError):
        code = "PROVIDER_AUTH_ERROR"
    elif status == 409 and code == "CONFIG_ERROR":
        code = "CONFLICT"
    elif code == "RETRYABLE":
        code = "UNAVAILABLE"
    elif code == "INTERNAL_ERROR":
        log.error("internal error: %s", exc.message)
    return error_response(status, code, exc.message, details, headers)


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        where, rest = parts[0], parts[1:]
        return ".".join(rest) if where == "body" and rest else ".".join([where, *rest])
    return ".".join(parts)


def request_validation_details(exc: RequestValidationError) -> list[FieldError]:
    """FastAPI's validation errors as per-field details."""
    return [
        FieldError(_field(e.get("loc", ())), str(e.get("msg", "invalid")), str(e.get("type", "")))
        for e in exc.errors()
    ]


def note_error(request: Request, status: int, code: str) -> None:
    """One line per API error: method, path (never the query), status and code only."""
    path = request.url.path
    log.info(
        "api error %s %s → %s %s", request.method, path, status, code,
        extra=fields(method=request.method, path=path, status=status, code=code),
    )  # fmt: skip


def install(app: FastAPI) -> None:
    """Register the error handlers on ``app`` (every route, API or not, answers in one shape)."""

    @app.exception_handler(CalflowError)
    async def calflow_error(request: Request, exc: CalflowError) -> JSONResponse:
        note_error(request, status_for(exc), exc.code)
        return from_calflow(exc)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        note_error(request, 422, "VALIDATION_ERROR")
        return error_response(
            422, "VALIDATION_ERROR", "the request is invalid", request_validation_details(exc)
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            401: "UNAUTHENTICATED",
            404: "NOT_FOUND",
            405: "METHOD_NOT_ALLOWED",
            413: "TOO_LARGE",
            415: "UNSUPPORTED_MEDIA_TYPE",
        }.get(exc.status_code, "HTTP_ERROR")
        headers = dict(exc.headers) if exc.headers else None
        note_error(request, exc.status_code, code)
        return error_response(exc.status_code, code, str(exc.detail), headers=headers)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, _: ClientDisconnect) -> Response:
        # the client went away mid-body (or the server's body timeout dropped it): not
        # calflow's error, and nobody is left to read an answer
        log.debug("the client of %s went away before its request was read", request.url.path)
        return Response(status_code=400)

    @app.exception_handler(Exception)
    async def crash(_: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error: %s: %s", type(exc).__name__, exc)
        return error_response(
            503, "UNAVAILABLE", "calflow could not handle this request; retry later"
        )
