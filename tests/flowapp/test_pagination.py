"""calflow.flowapp.pagination: the offset and cursor paginators a client's loop drives."""

from __future__ import annotations

from typing import Any

import httpx

from calflow.flowapp import ProviderClient
from calflow.flowapp.pagination import CursorPaginator, OffsetPaginator, Paginator


def test_offset_paginator_params_and_short_page_stop() -> None:
    pager = OffsetPaginator(page_size=2)
    assert pager.has_next
    assert pager.params() == {"take": 2, "skip": 0}
    pager.advance({"data": [1, 2]}, 2)
    assert pager.has_next and pager.params() == {"take": 2, "skip": 2}
    pager.advance({"data": [3]}, 1)
    assert not pager.has_next
    assert pager.offset == 3


def test_offset_paginator_full_last_page_needs_one_more_empty_request() -> None:
    pager = OffsetPaginator(page_size=2)
    pager.advance([1, 2], 2)
    assert pager.has_next
    pager.advance([], 0)
    assert not pager.has_next and pager.offset == 2


def test_offset_paginator_follows_the_bodys_has_next_flag() -> None:
    pager = OffsetPaginator(page_size=2, limit_param="limit", offset_param="offset", offset=10)
    assert pager.params() == {"limit": 2, "offset": 10}
    pager.advance({"pagination": {"hasNextPage": True}}, 1)  # short page, but the body says more
    assert pager.has_next and pager.offset == 11
    pager.advance({"pagination": {"hasNextPage": False}}, 2)  # full page, but the body says done
    assert not pager.has_next


def test_offset_paginator_stops_on_an_empty_page_whatever_the_flag() -> None:
    pager = OffsetPaginator(page_size=2)
    pager.advance({"pagination": {"hasNextPage": True}}, 0)
    assert not pager.has_next


def test_offset_paginator_ignores_a_flag_that_is_not_a_boolean() -> None:
    pager = OffsetPaginator(page_size=2, has_next_path=("meta", "more"))
    pager.advance({"meta": {"more": "yes"}}, 2)
    assert pager.has_next
    pager.advance({"meta": "nope"}, 1)
    assert not pager.has_next


def test_cursor_paginator_sends_the_cursor_until_it_is_null() -> None:
    pager = CursorPaginator(page_size=3)
    assert pager.has_next and pager.params() == {"limit": 3}
    pager.advance({"metadata": {"after": "c1"}}, 3)
    assert pager.has_next and pager.params() == {"limit": 3, "after": "c1"}
    pager.advance({"metadata": {"after": None}}, 2)
    assert not pager.has_next
    assert pager.cursor is None
    assert pager.params() == {"limit": 3}


def test_cursor_paginator_custom_names_and_non_string_cursors() -> None:
    pager = CursorPaginator(
        page_size=5, limit_param="page_size", cursor_param="next", cursor_path=("next_page",)
    )
    pager.advance({"next_page": 17}, 5)
    assert pager.params() == {"page_size": 5, "next": "17"}


def test_cursor_paginator_stops_on_an_empty_page_or_a_body_without_cursor() -> None:
    pager = CursorPaginator()
    pager.advance({"metadata": {"after": "c9"}}, 0)
    assert not pager.has_next
    pager = CursorPaginator()
    pager.advance(["not", "a", "mapping"], 3)
    assert not pager.has_next


async def test_a_client_loop_drives_an_offset_paginator_over_http() -> None:
    items = list(range(7))
    seen: list[dict[str, str]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        seen.append(params)
        skip, take = int(params["skip"]), int(params["take"])
        page = items[skip : skip + take]
        return httpx.Response(
            200,
            json={"data": page, "pagination": {"hasNextPage": skip + take < len(items)}},
        )

    got = await _collect(handle, OffsetPaginator(page_size=3))
    assert got == items
    assert seen == [
        {"take": "3", "skip": "0"},
        {"take": "3", "skip": "3"},
        {"take": "3", "skip": "6"},
    ]


async def test_a_client_loop_drives_a_cursor_paginator_over_http() -> None:
    pages = {None: ([1, 2], "p2"), "p2": ([3, 4], "p3"), "p3": ([5], None)}

    def handle(request: httpx.Request) -> httpx.Response:
        data, after = pages[request.url.params.get("after")]
        return httpx.Response(200, json={"data": data, "metadata": {"after": after}})

    assert await _collect(handle, CursorPaginator(page_size=2)) == [1, 2, 3, 4, 5]


async def _collect(handler: Any, pager: Paginator) -> list[Any]:
    out: list[Any] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = ProviderClient(http, "https://p.test")
        while pager.has_next:
            resp = await client.request("GET", "/items", params=pager.params())
            page = resp.body["data"]
            out.extend(page)
            pager.advance(resp.body, len(page))
    return out
