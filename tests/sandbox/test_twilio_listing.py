"""The Twilio sandbox's Message list: filters as Twilio documents them, newest first,
Twilio's paging envelope and cursors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from calflow.sandbox import SandboxConfig

from ._support import CLOCK, Sandbox, make_sandbox
from .test_twilio_queue import OTHER_FROM, TO, fetch, move_clock, send
from .test_twilio_sandbox import MESSAGES, SID, TOKEN, auth

DAY = 86_400
ENVELOPE = {"messages", "start", "end", "page", "page_size", "uri", "first_page_uri",
            "next_page_uri", "previous_page_uri"}  # fmt: skip


@pytest.fixture
async def tw() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(twilio_account_sid=SID, twilio_auth_token=TOKEN, clock_start=CLOCK)
    async for sandbox in make_sandbox(config):
        yield sandbox


async def listed(sb: Sandbox, params: dict[str, str] | None = None, url: str = MESSAGES) -> Any:
    response = await sb.root.get(url, params=params, headers=auth())
    assert response.status_code == 200, response.text
    return response.json()


def bodies(page: dict[str, Any]) -> list[str]:
    return [m["body"] for m in page["messages"]]


async def follow(sb: Sandbox, uri: str) -> Any:
    """A ``*_page_uri`` (relative to the API host, as Twilio gives it)."""
    return await listed(sb, url=f"/twilio{uri}")


async def test_to_and_from_filter_newest_first(tw: Sandbox) -> None:
    await send(tw, Body="a")
    await send(tw, Body="b", To="+12025550143")
    await send(tw, Body="c", From=OTHER_FROM)
    await send(tw, Body="d")
    assert bodies(await listed(tw)) == ["d", "c", "b", "a"]
    assert bodies(await listed(tw, {"To": TO})) == ["d", "c", "a"]
    assert bodies(await listed(tw, {"To": TO, "From": OTHER_FROM})) == ["c"]
    assert bodies(await listed(tw, {"To": "+19999999999"})) == []


async def test_date_sent_filters_match_only_sent_messages(tw: Sandbox) -> None:
    await send(tw, Body="jan7")  # the sandbox clock starts on 2030-01-07
    await move_clock(tw, DAY)
    await send(tw, Body="jan8")
    await move_clock(tw, 2 * DAY)
    await send(tw, Body="jan9")
    await tw.root.post("/_sandbox/twilio/options", json={"mps": 0.001})
    waiting = await send(tw, Body="queued")  # its turn came, but it takes 1,000 s to leave
    assert (await fetch(tw, waiting["sid"]))["date_sent"] is None

    assert bodies(await listed(tw)) == ["queued", "jan9", "jan8", "jan7"]
    assert bodies(await listed(tw, {"DateSent": "2030-01-08"})) == ["jan8"]
    assert bodies(await listed(tw, {"DateSent<": "2030-01-08"})) == ["jan8", "jan7"]
    assert bodies(await listed(tw, {"DateSent>": "2030-01-08"})) == ["jan9", "jan8"]
    # as Twilio's own URIs write them: DateSent>=… is the parameter "DateSent>"
    raw = await listed(tw, url=f"{MESSAGES}?DateSent>=2030-01-08&DateSent<=2030-01-08")
    assert bodies(raw) == ["jan8"]
    # a date-time bound is an instant (to the second), in GMT unless it says otherwise;
    # jan8 left at 06:10:00 and a few milliseconds
    assert bodies(await listed(tw, {"DateSent>": "2030-01-08T07:00:00Z"})) == ["jan9"]
    assert bodies(await listed(tw, {"DateSent>": "2030-01-08T07:10:00+01:00"})) == [
        "jan9",
        "jan8",
    ]
    assert bodies(await listed(tw, {"DateSent<": "Tue, 08 Jan 2030 12:00:00 +0000"})) == [
        "jan8",
        "jan7",
    ]
    # no filter on date_created: the parameter is ignored, as at Twilio
    assert len((await listed(tw, {"DateCreated>": "2031-01-01"}))["messages"]) == 4


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"DateSent": ">=2030-01-08"}, "DateSent"),
        ({"DateSent>": "tomorrow"}, "DateSent>"),
        ({"DateSent<": "2030-02-30"}, "DateSent<"),
        ({"PageSize": "0"}, "PageSize"),
        ({"PageSize": "1001"}, "PageSize"),
        ({"PageSize": "ten"}, "PageSize"),
        ({"Page": "-1"}, "Page"),
        ({"PageToken": "not-a-token"}, "PageToken"),
        ({"PageToken": "PASM" + "0" * 32}, "PageToken"),
    ],
)
async def test_bad_list_parameters_answer_400_20001(
    tw: Sandbox, params: dict[str, str], name: str
) -> None:
    await send(tw)
    response = await tw.root.get(MESSAGES, params=params, headers=auth())
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["status"]) == (20001, 400)
    assert name in body["message"]


async def test_pages_follow_twilio_cursors_and_envelope(tw: Sandbox) -> None:
    for n in range(7):
        await send(tw, Body=f"m{n}")
    await send(tw, Body="elsewhere", To="+12025550143")
    first = await listed(tw, {"To": TO, "PageSize": "3"})
    assert set(first) == ENVELOPE
    assert bodies(first) == ["m6", "m5", "m4"]
    assert (first["page"], first["page_size"], first["start"], first["end"]) == (0, 3, 0, 2)
    assert first["previous_page_uri"] is None
    base = f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert first["uri"] == first["first_page_uri"] == f"{base}?To=%2B14155552671&PageSize=3&Page=0"
    query = parse_qs(urlsplit(first["next_page_uri"]).query)
    assert query == {"To": [TO], "PageSize": ["3"], "Page": ["1"],
                     "PageToken": [f"PA{first['messages'][-1]['sid']}"]}  # fmt: skip

    # messages arriving meanwhile do not shift the pages that follow
    await send(tw, Body="late")
    second = await follow(tw, first["next_page_uri"])
    assert bodies(second) == ["m3", "m2", "m1"]
    assert (second["page"], second["start"], second["end"]) == (1, 3, 5)
    assert second["uri"].endswith(f"Page=1&PageToken=PA{first['messages'][-1]['sid']}")
    third = await follow(tw, second["next_page_uri"])
    assert bodies(third) == ["m0"] and third["next_page_uri"] is None
    assert (third["page"], third["start"], third["end"]) == (2, 6, 6)
    back = await follow(tw, third["previous_page_uri"])
    assert bodies(back) == ["m3", "m2", "m1"] and back["page"] == 1
    assert "PageToken=PB" in third["previous_page_uri"]


async def test_page_without_a_token_offsets_the_list(tw: Sandbox) -> None:
    for n in range(5):
        await send(tw, Body=f"m{n}")
    assert bodies(await listed(tw, {"PageSize": "2", "Page": "1"})) == ["m2", "m1"]
    empty = await listed(tw, {"PageSize": "2", "Page": "9"})
    assert empty["messages"] == [] and empty["next_page_uri"] is None


async def test_default_page_size_is_50(tw: Sandbox) -> None:
    for n in range(51):
        await send(tw, Body=f"m{n}")
    page = await listed(tw)
    assert page["page_size"] == 50 and len(page["messages"]) == 50
    assert bodies(await follow(tw, page["next_page_uri"])) == ["m0"]
