"""Real HTTP receivers for the outbound client tests, each run as a process:
``python receivers.py KIND PORT`` prints ``ready`` once it listens on 127.0.0.1:PORT.

Servers: ``stdlib10`` (``http.server``, HTTP/1.0, answers without a length and closes),
``stdlib11`` (``http.server``, HTTP/1.1 keep-alive, one thread), ``threaded``
(``ThreadingHTTPServer``, HTTP/1.1, 20 ms per request), ``uvicorn``, ``aiohttp``.
Raw behaviours on asyncio streams: ``chunked`` (a chunked body with trailers),
``continue`` (``100 Continue`` before the answer), ``closing`` (answers with a length,
keep-alive, then closes the connection once idle 50 ms), ``slowhead`` (sends nothing
for 5 s), ``truncated`` (``Content-Length: 100``, 10 bytes, close).

Every server answers ``ok:<connection number>:<bytes of body received>``, so a test
sees how many connections its requests used and that the body arrived whole.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from typing import Any

CONNECTIONS = [0]
LOCK = threading.Lock()


def _answer(received: int, connection: int) -> bytes:
    return f"ok:{connection}:{received}".encode()


def _stdlib(kind: str, port: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0" if kind == "stdlib10" else "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with LOCK:
                CONNECTIONS[0] += 1
                self.number = CONNECTIONS[0]

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if kind == "threaded":
                time.sleep(0.02)
            answer = _answer(len(body), self.number)
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            if kind != "stdlib10":  # HTTP/1.0: no length, the close ends the body
                self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server_class = ThreadingHTTPServer if kind == "threaded" else HTTPServer
    server = server_class(("127.0.0.1", port), Handler)
    print("ready", flush=True)
    server.serve_forever()


def _uvicorn(port: int) -> None:
    import uvicorn

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = _answer(size, id(scope.get("client")) % 1000)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off")
    server = uvicorn.Server(config)

    async def run() -> None:
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn has no event for it
            await asyncio.sleep(0.01)
        print("ready", flush=True)
        await serving

    asyncio.run(run())


def _aiohttp(port: int) -> None:
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        transport = request.transport
        number = id(transport) % 1000 if transport is not None else 0
        return web.Response(body=_answer(len(body), number), content_type="text/plain")

    async def run() -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, int] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, length


def _raw(kind: str, port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        CONNECTIONS[0] += 1
        number = CONNECTIONS[0]
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                _, length = request
                if kind == "continue":
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                body = await reader.readexactly(length)
                answer = _answer(len(body), number)
                if kind == "slowhead":
                    await asyncio.sleep(5)
                if kind == "truncated":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
                    await writer.drain()
                    return
                if kind == "chunked":
                    half = len(answer) // 2
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Done\r\n\r\n"
                        + f"{half:x}\r\n".encode() + answer[:half] + b"\r\n"
                        + f"{len(answer) - half:x}\r\n".encode() + answer[half:] + b"\r\n"
                        + b"0\r\nX-Done: yes\r\n\r\n"
                    )  # fmt: skip
                else:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: "
                                 + str(len(answer)).encode() + b"\r\n\r\n" + answer)  # fmt: skip
                await writer.drain()
                if kind == "closing":  # the idle keep-alive connection is closed by the server
                    await asyncio.sleep(0.05)
                    return
        finally:
            writer.close()

    async def run() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        print("ready", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(run())


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind in ("stdlib10", "stdlib11", "threaded"):
        _stdlib(kind, port)
    elif kind == "uvicorn":
        _uvicorn(port)
    elif kind == "aiohttp":
        _aiohttp(port)
    else:
        _raw(kind, port)


if __name__ == "__main__":
    main()
