"""Slow clients and bursts against ``calflow serve`` as a real process (issue #16, item 4).

While 200 clients trickle headers or bodies, or a burst goes past the limits, a probe
requests ``/healthz`` and posts a signed webhook every 100 ms on new connections: each
of its requests must finish within 1 s. The slow clients must be dropped with a 408
after the configured timeout, and requests past a limit answered 503 with
``Retry-After`` (``docs/security.md``, "Limits").
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from db_fixtures import clean_calflow_env, isolated_pg_url

from .support import LatencyProbe, SlowClient, guarded_server, raw_request, signed_delivery

pytestmark = pytest.mark.slow

__all__ = ["clean_calflow_env", "isolated_pg_url"]

HEADER_S = 2.0
BODY_S = 2.0
PROBE_LIMIT_S = 1.0
LATE_S = 6.0
"""How much later than its timeout a slow client may be dropped (a loaded machine)."""


def post_head(path: str, length: int, expect: bool = False) -> bytes:
    continues = "Expect: 100-continue\r\n" if expect else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: calflow\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n{continues}\r\n"
    ).encode()


SLOW_HEAD = b"GET /healthz HTTP/1.1\r\nHost: calflow\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n"


def _database(request: pytest.FixtureRequest, db: str) -> str | None:
    return str(request.getfixturevalue("isolated_pg_url")) if db == "postgres" else None


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_200_slow_clients_are_dropped_after_the_timeout_while_the_probe_is_answered(
    tmp_path: Path, db: str, request: pytest.FixtureRequest
) -> None:
    url = _database(request, db)
    with guarded_server(tmp_path, url, header_timeout_s=HEADER_S, body_timeout_s=BODY_S) as g:
        heads = [SlowClient(SLOW_HEAD) for _ in range(100)]
        bodies = [
            SlowClient(post_head(g.hook_path, 400), b"x" * 400, clock_from="headers")
            for _ in range(100)
        ]

        async def attack() -> None:
            await asyncio.gather(
                *(c.run(g.port, give_up_s=HEADER_S + LATE_S) for c in heads + bodies)
            )

        with LatencyProbe(g) as probe:
            asyncio.run(attack())
        output = g.server.output()

    probe.assert_each_within(PROBE_LIMIT_S)
    assert {a.status for a in probe.answers} == {200}, probe.answers[:5]
    for clients, timeout, name in ((heads, HEADER_S, "headers"), (bodies, BODY_S, "body")):
        for client in clients:
            assert client.ended_after is not None, "a slow client was never dropped"
            assert timeout * 0.9 <= client.ended_after <= timeout + LATE_S, client.ended_after
            assert client.answer.startswith(b"HTTP/1.1 408 "), client.answer[:80]
            error = json.loads(client.answer.split(b"\r\n\r\n", 1)[1])["error"]
            assert error["code"] == "REQUEST_TIMEOUT"
            assert f"request's {name} did not arrive within {timeout:g} s" in error["message"]
    assert "Traceback" not in output and "unexpected error" not in output, output[-2000:]


def test_a_burst_past_the_requests_in_flight_gets_503_with_retry_after(tmp_path: Path) -> None:
    limit = 20
    with guarded_server(tmp_path, max_requests=limit, body_timeout_s=6, busy_retry_after_s=3) as g:
        holders = [
            SlowClient(post_head(g.hook_path, 100), b"x" * 100, gap_s=30, clock_from="headers")
            for _ in range(limit)
        ]

        async def scenario() -> list[httpx.Response]:
            held = [asyncio.create_task(h.run(g.port, give_up_s=15)) for h in holders]
            body, headers = signed_delivery()
            async with httpx.AsyncClient(base_url=g.server.url, timeout=10) as client:
                for _ in range(200):  # until every holder is in flight
                    resp = await client.post(g.hook_path, content=body, headers=headers)
                    if resp.status_code == 503:
                        break
                    await asyncio.sleep(0.05)
                burst = await asyncio.gather(
                    *(_post(g.server.url, g.hook_path, body, headers) for _ in range(30))
                )
            await asyncio.gather(*held)
            return list(burst)

        with LatencyProbe(g) as probe:
            burst = asyncio.run(scenario())
            after, headers = signed_delivery()
            last = httpx.post(f"{g.server.url}{g.hook_path}", content=after, headers=headers)

    assert [r.status_code for r in burst] == [503] * 30
    for resp in burst:
        assert resp.headers["retry-after"] == "3"
        error = resp.json()["error"]
        assert error["code"] == "BUSY"
        assert f"limit of {limit} requests in flight (CALFLOW_MAX_REQUESTS)" in error["message"]
    assert all(h.answer.startswith(b"HTTP/1.1 408 ") for h in holders)
    assert last.status_code == 200  # the holders dropped, the limit frees
    probe.assert_each_within(PROBE_LIMIT_S)
    assert {a.status for a in probe.of("healthz")} == {200}
    webhook = {(a.status, a.retry_after) for a in probe.of("webhook")}
    assert webhook <= {(200, None), (503, "3")}, webhook


def test_the_connection_limit_evicts_idle_ones_and_keeps_a_reserve_for_healthz(
    tmp_path: Path,
) -> None:
    limit, reserve = 30, 4
    settings = {"max_connections": limit, "health_reserve": reserve, "max_requests": 100,
                "header_timeout_s": 20, "body_timeout_s": 20}  # fmt: skip
    with guarded_server(tmp_path, **settings) as g:

        async def scenario() -> dict[str, object]:
            out: dict[str, object] = {}
            # 1. silent connections fill the limit: a new request closes the idle longest
            idle = [await asyncio.open_connection("127.0.0.1", g.port) for _ in range(limit)]
            out["served"] = await _get(g.server.url, "/healthz")
            closed = await asyncio.wait(
                [asyncio.create_task(r.read()) for r, _ in idle], timeout=5,
                return_when=asyncio.FIRST_COMPLETED,
            )  # fmt: skip
            out["evicted"] = len(closed[0])
            for _, w in idle:
                w.close()
            # 2. every connection has a request in flight: /healthz only, on the reserve
            head = post_head(g.hook_path, 100, expect=True)
            holders = [SlowClient(head, b"x" * 100, gap_s=60, clock_from="headers")
                       for _ in range(limit)]  # fmt: skip
            held = [asyncio.create_task(h.run(g.port, give_up_s=10)) for h in holders]
            for holder in holders:  # the server answered "100 Continue": in flight
                await asyncio.wait_for(holder.in_flight.wait(), timeout=10)
            body, headers = signed_delivery()
            out["busy"] = await _post(g.server.url, g.hook_path, body, headers)
            out["health"] = await _get(g.server.url, "/healthz")
            # 3. idle connections on the reserve: the probe still gets through, they go
            spare = [await asyncio.open_connection("127.0.0.1", g.port) for _ in range(reserve)]
            out["probe"] = await asyncio.to_thread(
                raw_request, g.port, b"GET /healthz HTTP/1.1\r\nHost: calflow\r\n\r\n", 2.0
            )
            out["webhook"] = await _post(g.server.url, g.hook_path, body, headers)
            for _, w in spare:
                w.close()
            for task in held:
                task.cancel()
            await asyncio.gather(*held, return_exceptions=True)
            return out

        out = asyncio.run(scenario())

    assert out["served"] == 200
    assert out["evicted"] == 1  # one idle connection made room, the others stay
    busy = out["busy"]
    assert isinstance(busy, httpx.Response) and busy.status_code == 503
    assert busy.headers["retry-after"] == "2"
    assert (
        f"limit of {limit} connections (CALFLOW_MAX_CONNECTIONS)" in busy.json()["error"]["message"]
    )
    assert out["health"] == 200
    probe = out["probe"]
    assert isinstance(probe, bytes) and probe.startswith(b"HTTP/1.1 200 "), probe[:100]
    webhook = out["webhook"]
    assert isinstance(webhook, httpx.Response) and webhook.status_code == 503
    assert webhook.headers["retry-after"] == "2"


async def _get(url: str, path: str) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        return (await client.get(path)).status_code


async def _post(url: str, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        return await client.post(path, content=body, headers=headers)
