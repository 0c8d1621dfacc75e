"""A booking POST answered by a 5xx or a timeout may still have taken effect: before it is
retried, the app checks the provider's state, so a retry never makes a second booking."""

from __future__ import annotations

from typing import Any

import httpx

from calflow.flowapp import RetryPolicy

from ._support import api_path, booking, error, json_of, make_integration, make_runner, ok

FAST = RetryPolicy(backoff_base_s=0.001, backoff_max_s=0.002)
BOOK = {
    "eventTypeId": 7,
    "start": "2050-09-05T09:00:00Z",
    "attendee": {"name": "Ada", "email": "ada@example.com", "timeZone": "UTC"},
}


class FlakyCalCom:
    """Makes the booking on the first POST but answers it with ``first_answer``."""

    def __init__(self, first_answer: httpx.Response | Exception, lands: bool) -> None:
        self.first_answer = first_answer
        self.lands = lands
        self.posts = 0
        self.bookings: list[dict[str, Any]] = []
        self.list_queries: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = api_path(request)
        if request.method == "POST" and path == "/v2/bookings":
            self.posts += 1
            body = json_of(request)
            made = booking(
                f"bk_{self.posts}", start=body["start"], eventTypeId=7, status="accepted"
            )
            if self.posts == 1:
                if self.lands:
                    self.bookings.append(made)
                if isinstance(self.first_answer, Exception):
                    raise self.first_answer
                return self.first_answer
            if any(b["start"] == body["start"] for b in self.bookings):
                return error(
                    400, "User either already has booking at this time or is not available"
                )
            self.bookings.append(made)
            return ok(made, 201)
        if request.method == "GET" and path == "/v2/bookings":
            self.list_queries.append(dict(request.url.params))
            return ok(self.bookings)
        return error(404, "not found")


async def _book(fake: FlakyCalCom) -> Any:
    async with make_runner(fake, policy=FAST) as runner:
        return await runner.run_action("cal_com", "BookMeeting", BOOK, make_integration())


async def test_500_after_the_booking_landed_returns_that_booking_without_a_second_post() -> None:
    fake = FlakyCalCom(error(500, "Internal server error"), lands=True)
    result = await _book(fake)
    assert result.port == "success"
    assert result.data["uid"] == "bk_1"
    assert fake.posts == 1
    assert len(fake.bookings) == 1
    query = fake.list_queries[0]
    assert query["attendeeEmail"] == "ada@example.com"
    assert query["afterStart"] < "2050-09-05T09:00:00Z" < query["beforeEnd"]


async def test_read_timeout_after_the_booking_landed_is_not_a_conflict() -> None:
    fake = FlakyCalCom(httpx.ReadTimeout("slow"), lands=True)
    result = await _book(fake)
    assert (result.port, result.data["uid"], fake.posts) == ("success", "bk_1", 1)


async def test_500_that_did_not_land_is_retried_and_books_once() -> None:
    fake = FlakyCalCom(error(503, "Service unavailable"), lands=False)
    result = await _book(fake)
    assert result.port == "success"
    assert fake.posts == 2
    assert [b["uid"] for b in fake.bookings] == ["bk_2"]


async def test_reschedule_that_landed_returns_the_new_booking() -> None:
    old = booking("old", status="cancelled", rescheduledToUid="new")
    new = booking("new", rescheduledFromUid="old")
    posts = []

    def handler(request: httpx.Request) -> httpx.Response:
        path = api_path(request)
        if request.method == "POST":
            posts.append(path)
            return error(502, "Bad gateway")
        return ok(old if path.endswith("/old") else new)

    async with make_runner(handler, policy=FAST) as runner:
        result = await runner.run_action(
            "cal_com",
            "RescheduleBooking",
            {"bookingUid": "old", "start": "2050-09-06T09:00:00Z"},
            make_integration(),
        )
    assert (result.port, result.data["uid"]) == ("success", "new")
    assert posts == ["/v2/bookings/old/reschedule"]
