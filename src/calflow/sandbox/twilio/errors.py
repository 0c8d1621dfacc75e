"""Twilio error bodies: ``{code, message, more_info, status}`` with Twilio's own codes."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

MORE_INFO = "https://www.twilio.com/docs/errors/{code}"
AUTH_HEADERS = {"WWW-Authenticate": 'Basic realm="Twilio API"'}


class TwilioError(Exception):
    """An error answered with a Twilio error body."""

    def __init__(
        self, status: int, code: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    @property
    def body(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": MORE_INFO.format(code=self.code),
            "status": self.status,
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


def unauthenticated() -> TwilioError:
    """401 / 20003, as Twilio answers bad or missing credentials."""
    return TwilioError(401, 20003, "Authenticate", AUTH_HEADERS)


def bad_request(code: int, message: str) -> TwilioError:
    """A 400 with a Twilio error code (21211 invalid To, 21602 missing Body…)."""
    return TwilioError(400, code, message)


def not_found(path: str) -> TwilioError:
    """404 / 20404 for an unknown resource."""
    return TwilioError(404, 20404, f"The requested resource {path} was not found")


async def twilio_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI exception handler rendering :class:`TwilioError`."""
    assert isinstance(exc, TwilioError)
    return exc.response()


async def unrouted(request: Request, exc: Exception) -> JSONResponse:
    """Unknown route (20404) or wrong method (20004), in Twilio's error shape."""
    status = exc.status_code if isinstance(exc, StarletteHTTPException) else 404
    if status == 405:
        return TwilioError(405, 20004, "Method not allowed").response()
    return not_found(request.url.path).response()
