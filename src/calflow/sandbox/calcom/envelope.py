"""Cal.com API v2 response envelopes and the NestJS-style error type.

Success: ``{"status": "success", "data": ...}`` (lists add ``pagination``).
Error: ``{"status": "error", "timestamp", "path", "error": {"code", "message", "details"}}``
where ``code`` is the NestJS exception class name and ``details`` the exception's
response object (``{message, error, statusCode}``), as Cal.com's HttpExceptionFilter does.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

_EXCEPTIONS: dict[int, tuple[str, str]] = {
    400: ("BadRequestException", "Bad Request"),
    401: ("UnauthorizedException", "Unauthorized"),
    403: ("ForbiddenException", "Forbidden"),
    404: ("NotFoundException", "Not Found"),
    409: ("ConflictException", "Conflict"),
    429: ("ThrottlerException", "Too Many Requests"),
    500: ("InternalServerErrorException", "Internal Server Error"),
}


class CalcomError(Exception):
    """An error answered with Cal.com's error envelope."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        default_code, reason = _EXCEPTIONS.get(status_code, ("HttpException", "Error"))
        self.status_code = status_code
        self.message = message
        self.code = code or default_code
        self.details = details or {"message": message, "error": reason, "statusCode": status_code}
        self.headers: dict[str, str] = {}


def bad_request(message: str) -> CalcomError:
    """400 BadRequestException."""
    return CalcomError(400, message)


def not_found(message: str) -> CalcomError:
    """404 NotFoundException."""
    return CalcomError(404, message)


def route_not_found(request: Request) -> CalcomError:
    """The 404 Nest's router answers when no controller serves a route/version."""
    return CalcomError(404, f"Cannot {request.method} {request_path(request)}")


def request_path(request: Request) -> str:
    """The path as Cal.com sees it (without the sandbox mount prefix), with query."""
    path = request.url.path
    root = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    query = request.url.query
    return f"{path}?{query}" if query else path


def error_body(request: Request, exc: CalcomError) -> dict[str, Any]:
    """The error envelope for ``exc``."""
    return {
        "status": "error",
        "timestamp": iso_ms(datetime.now(UTC)),
        "path": request_path(request),
        "error": {"code": exc.code, "message": exc.message, "details": exc.details},
    }


async def calcom_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI exception handler rendering :class:`CalcomError`."""
    assert isinstance(exc, CalcomError)
    return JSONResponse(error_body(request, exc), status_code=exc.status_code, headers=exc.headers)


def success(data: Any, status_code: int = 200) -> JSONResponse:
    """``{"status": "success", "data": data}``."""
    return JSONResponse({"status": "success", "data": data}, status_code=status_code)


def paginated(items: list[Any], take: int, skip: int) -> JSONResponse:
    """A success envelope with offset pagination metadata (Cal.com's formulas)."""
    total = len(items)
    skip = min(skip, total)
    page = items[skip : skip + take]
    return JSONResponse(
        {
            "status": "success",
            "data": page,
            "pagination": {
                "totalItems": total,
                "remainingItems": max(total - (skip + take), 0),
                "returnedItems": len(page),
                "itemsPerPage": take,
                "currentPage": skip // take + 1,
                "totalPages": math.ceil(total / take),
                "hasNextPage": skip + take < total,
                "hasPreviousPage": skip > 0,
            },
        }
    )


def iso_ms(value: datetime) -> str:
    """``2024-08-13T09:00:00.000Z``."""
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


def iso_s(value: datetime) -> str:
    """``2024-08-13T09:00:00Z`` (dayjs ``utc().format()``, used in webhook payloads)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_offset(value: datetime) -> str:
    """``2024-08-13T09:00:00+00:00``: dayjs ``format()`` on a UTC server (cancellations)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def parse_iso(value: Any, field_name: str) -> datetime:
    """Parse an ISO 8601 datetime (naive values are UTC); 400 when invalid."""
    if not isinstance(value, str) or not value:
        raise bad_request(f"{field_name} must be a valid ISO 8601 date string")
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise bad_request(f"{field_name} must be a valid ISO 8601 date string") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
