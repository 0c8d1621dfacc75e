"""Shared helpers of the Cal.com app tests: integrations, runners, a recording fake API."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import httpx
from pydantic import SecretStr

from calflow.flowapp import BookingChange, RetryPolicy
from calflow.flowapp.runner import Runner
from calflow.integrations import Integration, IntegrationStore

BASE_URL = "http://sandbox.test/calcom"
API_KEY = "cal_test_0123456789abcdef"
Handler = Callable[[httpx.Request], httpx.Response]


def make_integration(
    config: Mapping[str, Any] | None = None, secrets: Mapping[str, str] | None = None
) -> Integration:
    """A cal_com integration built directly (no store): base URL of the fake, an API key."""
    now = datetime.now(UTC)
    return Integration(
        id="int_cal_test",
        workspace_id="default",
        app_key="cal_com",
        name="cal test",
        config=MappingProxyType({"base_url": BASE_URL, **(config or {})}),
        secrets=MappingProxyType(
            {
                k: SecretStr(v)
                for k, v in (secrets if secrets is not None else {"api_key": API_KEY}).items()
            }
        ),
        created_at=now,
        updated_at=now,
    )


class Recorder:
    """A MockTransport handler that keeps every request (and its parsed JSON body)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def bodies(self) -> list[Any]:
        return [json_of(r) for r in self.requests]

    def calls(self) -> list[tuple[str, str]]:
        """(method, path below the base URL) of every request, in order."""
        return [(r.method, api_path(r)) for r in self.requests]


def json_of(request: httpx.Request) -> Any:
    content = request.content
    return json.loads(content) if content else None


def api_path(request: httpx.Request) -> str:
    path = request.url.path
    prefix = httpx.URL(BASE_URL).path
    assert path.startswith(prefix + "/"), f"{path} is not below the base URL {BASE_URL}"
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


def ok(data: Any, status: int = 200, **extra: Any) -> httpx.Response:
    """A success envelope."""
    return httpx.Response(status, json={"status": "success", "data": data, **extra})


def error(status: int, message: str, code: str = "BadRequestException") -> httpx.Response:
    """An error envelope as Cal.com writes it."""
    return httpx.Response(
        status,
        json={
            "status": "error",
            "timestamp": "2050-09-01T10:00:00.000Z",
            "path": "/v2/…",
            "error": {"code": code, "message": message, "details": {}},
        },
    )


def pagination(total: int, skip: int, returned: int, take: int) -> dict[str, Any]:
    pages = max(1, -(-total // take))
    return {
        "totalItems": total,
        "remainingItems": max(0, total - skip - returned),
        "returnedItems": returned,
        "itemsPerPage": take,
        "currentPage": skip // take + 1,
        "totalPages": pages,
        "hasNextPage": skip + returned < total,
        "hasPreviousPage": skip > 0,
    }


def booking(uid: str = "bk_1", **fields: Any) -> dict[str, Any]:
    """A plausible Cal.com v2 booking object."""
    out: dict[str, Any] = {
        "id": 101,
        "uid": uid,
        "title": "30 min between Host and Ada",
        "description": "",
        "hosts": [{"id": 1, "name": "Host", "email": "host@example.com", "username": "host"}],
        "status": "accepted",
        "start": "2050-09-05T09:00:00.000Z",
        "end": "2050-09-05T09:30:00.000Z",
        "duration": 30,
        "eventTypeId": 7,
        "eventType": {"id": 7, "slug": "30min"},
        "location": "integrations:daily",
        "absentHost": False,
        "createdAt": "2050-09-01T10:00:00.000Z",
        "updatedAt": "2050-09-01T10:00:00.000Z",
        "metadata": {},
        "attendees": [
            {
                "name": "Ada",
                "email": "ada@example.com",
                "timeZone": "Europe/Rome",
                "language": "en",
                "absent": False,
            }
        ],
        "guests": [],
        "bookingFieldsResponses": {},
    }
    out.update(fields)
    return out


def event_type(id_: int, title: str, slug: str, length: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": id_,
        "title": title,
        "slug": slug,
        "lengthInMinutes": length,
        "lengthInMinutesOptions": [],
        "description": f"{title} call",
        "hidden": False,
        **fields,
    }


def webhook(id_: int, url: str, triggers: list[str], active: bool = True) -> dict[str, Any]:
    return {
        "id": id_,
        "subscriberUrl": url,
        "triggers": triggers,
        "active": active,
        "payloadTemplate": None,
        "userId": 1,
        "secret": None,
    }


def path_match(pattern: str, path: str) -> re.Match[str] | None:
    """``pattern`` with ``{name}`` placeholders matched against a whole path."""
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(pattern))
    return re.fullmatch(regex, path)


class FakeCalCom:
    """A plausible Cal.com v2 for conformance runs: success envelopes for every route the
    app uses, a small webhook table, and (optionally) one 401 before an OAuth refresh."""

    def __init__(
        self, webhooks: list[dict[str, Any]] | None = None, expire_token: str = ""
    ) -> None:
        self.webhooks = {int(h["id"]): dict(h) for h in webhooks or []}
        self.next_id = 900
        self.expired = expire_token
        self.refreshed = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, method = api_path(request), request.method
        body = json_of(request) or {}
        params = request.url.params
        auth = request.headers.get("authorization", "")
        if self.expired and auth == f"Bearer {self.expired}" and "/oauth/" not in path:
            return error(401, "Access token is expired", "UnauthorizedException")
        if (found := path_match("/v2/oauth/{client}/refresh", path)) and method == "POST":
            self.refreshed = True
            return ok(
                {
                    "accessToken": "at_new",
                    "refreshToken": "rt_new",
                    "accessTokenExpiresAt": 4102444800000,
                    "refreshTokenExpiresAt": 4133980800000,
                }
            )
        if path == "/v2/bookings" and method == "POST":
            start = body.get("start", "2050-09-05T09:00:00.000Z")
            return ok(booking("bk_new", start=start, attendees=[body.get("attendee", {})]), 201)
        if path == "/v2/bookings" and method == "GET":
            take, skip = int(params.get("take", 100)), int(params.get("skip", 0))
            items = [booking(f"bk_{i}") for i in range(skip, min(skip + take, 3))]
            return ok(items, pagination=pagination(3, skip, len(items), take))
        if found := path_match("/v2/bookings/{uid}", path):
            return ok(booking(found["uid"]))
        if found := path_match("/v2/bookings/{uid}/reschedule", path):
            new = booking("bk_moved", start=body["start"], rescheduledFromUid=found["uid"])
            return ok(new, 201)
        if found := path_match("/v2/bookings/{uid}/{verb}", path):
            status = {"cancel": "cancelled", "decline": "rejected"}.get(found["verb"], "accepted")
            return ok(booking(found["uid"], status=status))
        if path == "/v2/slots":
            day = str(params.get("start"))[:10]
            slot: dict[str, Any] = {"start": f"{day}T09:00:00.000+02:00"}
            if params.get("format") == "range":
                slot["end"] = f"{day}T09:30:00.000+02:00"
            return ok({day: [slot]})
        if path == "/v2/event-types":
            return ok([event_type(7, "Intro", "intro", 30), event_type(8, "Deep dive", "deep", 60)])
        if path == "/v2/webhooks" and method == "GET":
            take, skip = int(params.get("take", 250)), int(params.get("skip", 0))
            hooks = list(self.webhooks.values())[skip : skip + take]
            return ok(hooks, pagination=pagination(len(self.webhooks), skip, len(hooks), take))
        if path == "/v2/webhooks" and method == "POST":
            self.next_id += 1
            hook = {**webhook(self.next_id, body["subscriberUrl"], body["triggers"]), **body}
            hook["secret"] = None
            self.webhooks[self.next_id] = hook
            return ok(hook, 201)
        if found := path_match("/v2/webhooks/{id}", path):
            hook_id = int(found["id"])
            if hook_id not in self.webhooks:
                return error(404, f"Webhook {hook_id} not found", "NotFoundException")
            if method == "DELETE":
                return ok(self.webhooks.pop(hook_id))
            self.webhooks[hook_id].update({k: v for k, v in body.items() if k != "secret"})
            return ok(self.webhooks[hook_id])
        return error(404, f"Cannot {method} {path}", "NotFoundException")
