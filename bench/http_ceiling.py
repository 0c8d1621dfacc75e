"""How many signed webhook POSTs per second one Python process can send, per HTTP client.

A diagnostic for the replay benchmark: the same 2.5 kB signed SavvyCal envelopes (bodies
and signatures built before timing) POSTed to ``bench/receiver.py`` (its own process)
by N concurrent workers over keep-alive connections, with each of these clients:

* ``httpx``: ``httpx.AsyncClient`` as shipped (httpcore pool over anyio);
* ``httpx-lean``: ``httpx.AsyncClient`` with a minimal keep-alive HTTP/1.1 transport
  over asyncio streams (no httpcore, no anyio; request written in one piece);
* ``raw``: the same minimal HTTP/1.1 over asyncio streams, without httpx;
* ``aiohttp``: ``aiohttp.ClientSession`` as shipped (its C parser, keep-alive pool);
* ``calflow-poster``: calflow's webhook deliveries (``calflow.net.poster.Poster``:
  aiohttp behind the SSRF guard's resolver, bodies read with a cap);
* ``httpx-aiohttp``: httpx's API on aiohttp's pool (the ``httpx-aiohttp`` package's
  ``AiohttpTransport`` as shipped);
* ``calflow-httpx``: calflow's provider client (``calflow.net.clients.outbound_client``:
  ``httpx-aiohttp`` behind the guard's resolver, with calflow's error translation).

    python bench/http_ceiling.py [--n 4000] [--concurrency 1,4,16] [--clients ...]

Prints requests/s and this process's CPU time per request for each client and
concurrency; the receiver checks every signature and counts unique ids.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from calflow.net.clients import outbound_client
from calflow.net.poster import Poster
from calflow.netpolicy import parse_allowance
from receiver import receiver_process
from replay_baseline import envelope

SECRET = "whsec_bench_ceiling"
Body = tuple[bytes, str]  # (raw body, signature header value)


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer


async def _exchange(
    conn: _Conn, head: bytes, body: bytes
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Write one request in one piece; read status, headers and a Content-Length body."""
    conn.writer.write(head + body)
    raw = await conn.reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = [(k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)]
    length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
    return status, headers, await conn.reader.readexactly(length)


class LeanTransport(httpx.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 over asyncio streams (Content-Length bodies only)."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[_Conn]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = (request.url.host, request.url.port or 80)
        idle = self._idle.setdefault(key, [])
        conn = idle.pop() if idle else _Conn(*await asyncio.open_connection(*key))
        lines = [f"{request.method} {request.url.raw_path.decode()} HTTP/1.1"]
        lines += [f"{k.decode()}: {v.decode()}" for k, v in request.headers.raw]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        status, headers, content = await _exchange(conn, head, request.content)
        idle.append(conn)
        return httpx.Response(status, headers=headers, content=content)

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.writer.close()
        self._idle.clear()


def _bodies(n: int) -> list[Body]:
    event = {"id": "", "state": "confirmed", "created_at": "2026-01-01T00:00:00Z"}
    event["description"] = "x" * 2300  # about the size of a seeded SavvyCal event
    out = []
    for i in range(n):
        body = json.dumps(envelope({**event, "id": f"event_{i:08d}"})).encode()
        out.append((body, "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()))
    return out


async def _drive(
    bodies: list[Body], concurrency: int, post: Callable[[Body], Awaitable[None]]
) -> None:
    queue: asyncio.Queue[Body] = asyncio.Queue()
    for item in bodies:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            await post(queue.get_nowait())

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _run(client: str, url: str, bodies: list[Body], concurrency: int) -> float:
    """Send every body; returns the wall time (connections to the receiver excluded)."""
    if client == "raw":
        host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
        conns = [_Conn(*await asyncio.open_connection(host, int(port))) for _ in range(concurrency)]
        free = list(conns)

        async def post_raw(item: Body) -> None:
            conn = free.pop()
            head = (
                f"POST /webhook HTTP/1.1\r\nhost: {host}:{port}\r\n"
                f"content-type: application/json\r\ncontent-length: {len(item[0])}\r\n"
                f"x-savvycal-signature: {item[1]}\r\n\r\n"
            ).encode()
            status, _, _ = await _exchange(conn, head, item[0])
            free.append(conn)
            if status != 200:
                raise RuntimeError(f"receiver answered {status}")

        t0 = time.perf_counter()
        await _drive(bodies, concurrency, post_raw)
        elapsed = time.perf_counter() - t0
        for conn in conns:
            conn.writer.close()
        return elapsed
    if client in ("aiohttp", "calflow-poster"):
        return await _run_aiohttp(client, url, bodies, concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    transport: httpx.AsyncBaseTransport | None = None
    if client == "httpx-lean":
        transport = LeanTransport()
    elif client == "httpx-aiohttp":
        transport = AiohttpTransport(limits=limits)
    if client == "calflow-httpx":
        local = parse_allowance("127.0.0.1")
        client_cm = outbound_client(local, max_connections=concurrency)
    else:
        client_cm = httpx.AsyncClient(limits=limits, transport=transport)
    async with client_cm as http:

        async def post_httpx(item: Body) -> None:
            headers = {"content-type": "application/json", "x-savvycal-signature": item[1]}
            (await http.post(url, content=item[0], headers=headers)).raise_for_status()

        t0 = time.perf_counter()
        await _drive(bodies, concurrency, post_httpx)
        return time.perf_counter() - t0


async def _run_aiohttp(client: str, url: str, bodies: list[Body], concurrency: int) -> float:
    def headers(item: Body) -> dict[str, str]:
        return {"content-type": "application/json", "x-savvycal-signature": item[1]}

    if client == "calflow-poster":
        poster = Poster(url, max_connections=concurrency, timeout_s=30.0,
                        allowance=parse_allowance("127.0.0.1"))  # fmt: skip

        async def post_poster(item: Body) -> None:
            answer = await poster.post(item[0], headers(item))
            if answer.status_code != 200:
                raise RuntimeError(f"receiver answered {answer.status_code}")

        t0 = time.perf_counter()
        await _drive(bodies, concurrency, post_poster)
        elapsed = time.perf_counter() - t0
        await poster.aclose()
        return elapsed
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post_aiohttp(item: Body) -> None:
            async with session.post(url, data=item[0], headers=headers(item)) as resp:
                await resp.read()
                resp.raise_for_status()

        t0 = time.perf_counter()
        await _drive(bodies, concurrency, post_aiohttp)
        return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="POSTs per measurement")
    parser.add_argument("--concurrency", default="1,4,16", help="comma-separated")
    parser.add_argument(
        "--clients",
        default="httpx,httpx-lean,raw,aiohttp,calflow-poster,calflow-httpx,httpx-aiohttp",
        help="comma-separated",
    )
    args = parser.parse_args()
    bodies = _bodies(args.n)
    print("| client | concurrency | requests/s | client CPU µs/request |")
    print("|---|---:|---:|---:|")
    clients = args.clients.split(",")
    with receiver_process(SECRET) as receiver:
        for client in clients:
            for concurrency in (int(c) for c in args.concurrency.split(",")):
                httpx.post(f"{receiver}/reset").raise_for_status()
                cpu0 = time.process_time()
                elapsed = asyncio.run(_run(client, f"{receiver}/webhook", bodies, concurrency))
                cpu = time.process_time() - cpu0
                stats = httpx.get(f"{receiver}/stats").json()
                if stats["unique"] != len(bodies) or stats["bad_signatures"]:
                    raise RuntimeError(f"receiver disagrees: {stats}")
                print(
                    f"| {client} | {concurrency} | {len(bodies) / elapsed:,.0f} "
                    f"| {cpu / len(bodies) * 1e6:,.0f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
