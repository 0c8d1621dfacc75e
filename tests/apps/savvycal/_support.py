"""Shared helpers of the SavvyCal app tests: integrations, runners, a recording fake API."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import httpx
from pydantic import SecretStr

from calflow.flowapp import BookingChange, RetryPolicy
from calflow.flowapp.runner import Runner
from calflow.integrations import Integration, IntegrationStore

BASE_URL = "http://sandbox.test/savvycal"
TOKEN = "pt_secret_0123456789abcdef"
TOKEN_URL = "http://auth.test/oauth/token"
Handler = Callable[[httpx.Request], httpx.Response]


def make_integration(
    config: Mapping[str, Any] | None = None, secrets: Mapping[str, str] | None = None
) -> Integration:
    """A savvycal integration built directly (no store): the fake's base URL, a token."""
    now = datetime.now(UTC)
    return Integration(
        id="int_savvy_test",
        workspace_id="default",
        app_key="savvycal",
        name="savvy test",
        config=MappingProxyType({"base_url": BASE_URL, **(config or {})}),
        secrets=MappingProxyType(
            {
                k: SecretStr(v)
                for k, v in (secrets if secrets is not None else {"token": TOKEN}).items()
            }
        ),
        created_at=now,
        updated_at=now,
    )


class Recorder:
    """A MockTransport handler that keeps every request."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, api_path(r)) for r in self.requests]


def answer(*responses: httpx.Response) -> Recorder:
    """A recorder answering ``responses`` in order (the last one repeats)."""
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return Recorder(handler)


def json_of(request: httpx.Request) -> Any:
    return json.loads(request.content) if request.content else None


def api_path(request: httpx.Request) -> str:
    path = request.url.path
    prefix = httpx.URL(BASE_URL).path
    if not path.startswith(prefix + "/"):
        return str(request.url)
    return path[len(prefix) :]


def make_runner(
    handler: Handler,
    *,
    store: IntegrationStore | None = None,
    sink: Callable[[BookingChange], Any] | None = None,
    policy: RetryPolicy | None = None,
) -> Runner:
    return Runner(
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        policy=policy or RetryPolicy(backoff_base_s=0.001),
        store=store,
        sink=sink,
    )


def page(entries: list[Any], after: str | None = None, limit: int = 20) -> httpx.Response:
    return httpx.Response(
        200, json={"entries": entries, "metadata": {"before": None, "after": after, "limit": limit}}
    )


def errors(status: int, errs: Any) -> httpx.Response:
    return httpx.Response(status, json={"errors": errs})


def event(id_: str = "event_1", **fields: Any) -> dict[str, Any]:
    """A plausible SavvyCal event object."""
    out: dict[str, Any] = {
        "id": id_,
        "uuid": "0b8f1c1e-0000-4000-8000-000000000001",
        "state": "confirmed",
        "summary": "Intro call",
        "description": None,
        "location": None,
        "created_at": "2050-09-01T10:00:00Z",
        "start_at": "2050-09-05T09:00:00Z",
        "end_at": "2050-09-05T09:30:00Z",
        "duration": 30,
        "buffer_before": 0,
        "buffer_after": 0,
        "canceled_at": None,
        "cancel_reason": None,
        "rescheduled_at": None,
        "link": {"id": "link_1", "name": "Intro", "slug": "intro"},
        "attendees": [
            {
                "id": "attendee_1",
                "email": "ada@example.com",
                "display_name": "Ada Lovelace",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "phone_number": None,
                "time_zone": "Europe/Rome",
                "is_organizer": False,
                "is_scheduler": True,
                "response_status": "accepted",
                "fields": [],
            }
        ],
        "metadata": {},
        "url": "https://savvycal.com/events/event_1",
    }
    out.update(fields)
    return out


def link(id_: str, name: str, default: int | None = 30, **fields: Any) -> dict[str, Any]:
    return {
        "id": id_,
        "state": "active",
        "slug": name.lower().replace(" ", "-"),
        "name": name,
        "durations": [default] if default else [],
        "default_duration": default,
        "scope": None,
        "fields": [],
        **fields,
    }


def webhook(id_: str, url: str, secret: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": id_,
        "url": url,
        "state": "active",
        "version": "2020-11-18",
        "created_at": "2050-09-01T10:00:00Z",
    }
    if secret is not None:
        out["secret"] = secret
    return out
