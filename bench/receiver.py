"""A fast local webhook receiver for the replay benchmark, run as a process of its own.

    python bench/receiver.py --port P        (secret from the RECEIVER_SECRET variable)

A bare asyncio HTTP/1.1 server (keep-alive, pipelining, ``Content-Length`` bodies; no
framework, so the receiver is never what limits a sender). Every ``POST`` other than
``/reset`` is a webhook delivery: the ``x-savvycal-signature: sha256=<HEX>`` header
must be the HMAC-SHA256 of the raw body with the shared secret (hex compared
case-insensitively, in constant time), else 401; the body must be a SavvyCal envelope
``{"type", "id", "version", "occurred_at", "payload": {"id", ...}}``, else 400.
Accepted deliveries answer 200 and are counted by envelope ``id`` (total, unique,
duplicates) and by event ``payload.id``.

With ``--delay-ms N`` it is instead the most ordinary receiver there is: Python's
``http.server`` (``ThreadingHTTPServer``, HTTP/1.1 keep-alive, a thread per connection)
taking N ms per delivery, as a small web app's handler does; same checks, same counters.

* ``GET /stats``: the counters as JSON (exact: one event loop, no sampling).
* ``GET /ids``: the sorted unique event ids (``payload.id``) seen, as a JSON list.
* ``POST /reset``: zero every counter.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_MAX_HEAD = 64 * 1024
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}


class Stats:
    """Counters of one measurement (zeroed by ``POST /reset``)."""

    def __init__(self) -> None:
        self.requests = 0  # every webhook POST, good or bad
        self.total = 0  # accepted deliveries
        self.ids: set[str] = set()
        self.event_ids: set[str] = set()
        self.duplicates = 0
        self.bad_signatures = 0
        self.bad_bodies = 0
        self.replay_id_mismatches = 0  # X-Calflow-Replay-Id present but != envelope id
        self.types: Counter[str] = Counter()
        self.connections = 0  # connections opened since the reset
        self.max_open = 0
        self.first_at: float | None = None  # time.time() of the first / last delivery
        self.last_at: float | None = None

    def to_dict(self, open_now: int) -> dict[str, Any]:
        """The JSON of ``GET /stats``."""
        span = (
            self.last_at - self.first_at
            if self.first_at is not None and self.last_at is not None
            else None
        )
        return {
            "requests": self.requests,
            "total": self.total,
            "unique": len(self.ids),
            "duplicates": self.duplicates,
            "unique_event_ids": len(self.event_ids),
            "bad_signatures": self.bad_signatures,
            "bad_bodies": self.bad_bodies,
            "replay_id_mismatches": self.replay_id_mismatches,
            "types": dict(sorted(self.types.items())),
            "connections": self.connections,
            "max_open_connections": self.max_open,
            "open_connections": open_now,
            "first_at": self.first_at,
            "last_at": self.last_at,
            "span_s": span,
        }


class Receiver:
    """Request handling shared by every connection."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.stats = Stats()
        self.open = 0

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        """``(status, JSON body)`` for one request."""
        route = path.split("?", 1)[0]
        if method == "GET" and route == "/stats":
            return 200, json.dumps(self.stats.to_dict(self.open)).encode()
        if method == "GET" and route == "/ids":
            return 200, json.dumps(sorted(self.stats.event_ids)).encode()
        if method == "POST" and route == "/reset":
            self.stats = Stats()
            self.stats.max_open = self.stats.connections = self.open
            return 200, b'{"reset":true}'
        if method != "POST":
            return 404, b'{"error":"not found"}'
        return self._delivery(headers, body)

    def _delivery(self, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        st = self.stats
        st.requests += 1
        now = time.time()
        if st.first_at is None:
            st.first_at = now
        st.last_at = now
        given = headers.get("x-savvycal-signature", "")
        expected = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        if not (
            given[:7].lower() == "sha256="
            and given.isascii()
            and hmac.compare_digest(given[7:].lower(), expected)
        ):
            st.bad_signatures += 1
            return 401, b'{"error":"bad signature"}'
        try:
            envelope = json.loads(body)
            env_id = envelope["id"]
            event_id = envelope["payload"]["id"]
            kind = envelope["type"]
            if not (isinstance(env_id, str) and isinstance(event_id, str)):
                raise TypeError("ids must be strings")
        except (ValueError, KeyError, TypeError):
            st.bad_bodies += 1
            return 400, b'{"error":"not a SavvyCal envelope"}'
        st.total += 1
        if env_id in st.ids:
            st.duplicates += 1
        else:
            st.ids.add(env_id)
        st.event_ids.add(event_id)
        st.types[str(kind)] += 1
        replay_id = headers.get("x-calflow-replay-id")
        if replay_id is not None and replay_id != env_id:
            st.replay_id_mismatches += 1
        return 200, b"{}"


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: parses requests from the byte stream, answers in order."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        rc = self.receiver
        rc.open += 1
        rc.stats.connections += 1
        rc.stats.max_open = max(rc.stats.max_open, rc.open)

    def connection_lost(self, exc: Exception | None) -> None:
        self.receiver.open -= 1
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self.transport is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > _MAX_HEAD:
                    self._reply(400, b'{"error":"head too large"}', close=True)
                return
            lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            try:
                method, target, version = lines[0].split(" ", 2)
            except ValueError:
                self._reply(400, b'{"error":"bad request line"}', close=True)
                return
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self._reply(400, b'{"error":"chunked bodies unsupported"}', close=True)
                return
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                self._reply(400, b'{"error":"bad content-length"}', close=True)
                return
            start = end + 4
            if len(self.buf) < start + length:
                return  # wait for the rest of the body
            body = bytes(self.buf[start : start + length])
            del self.buf[: start + length]
            status, payload = self.receiver.handle(method, target, headers, body)
            conn = headers.get("connection", "").lower()
            close = conn == "close" or (version == "HTTP/1.0" and conn != "keep-alive")
            self._reply(status, payload, close=close)

    def _reply(self, status: int, payload: bytes, *, close: bool) -> None:
        if self.transport is None:
            return
        head = (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n"
            f"{'connection: close' if close else 'connection: keep-alive'}\r\n\r\n"
        )
        self.transport.write(head.encode() + payload)
        if close:
            self.transport.close()
            self.transport = None


async def serve(host: str, port: int, secret: bytes) -> None:
    """Serve until cancelled; prints ``ready <port>`` once listening."""
    receiver = Receiver(secret)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(receiver), host, port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    print(f"ready {bound}", flush=True)
    async with server:
        await server.serve_forever()


def serve_threaded(host: str, port: int, secret: bytes, delay_ms: float) -> None:
    """``http.server`` with a thread per connection, ``delay_ms`` per delivery."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Lock

    receiver, lock = Receiver(secret), Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            delivery = method == "POST" and self.path.split("?", 1)[0] != "/reset"
            if delivery:
                time.sleep(delay_ms / 1000)
            with lock:
                status, payload = receiver.handle(method, self.path, headers, body)
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    print(f"ready {server.server_address[1]}", flush=True)
    server.serve_forever()


@contextmanager
def receiver_process(secret: str, delay_ms: float | None = None) -> Iterator[str]:
    """Run this receiver as a child process on a free port; yield its root URL
    (``delay_ms``: the threaded ``http.server`` taking that long per delivery)."""
    env = {**os.environ, "RECEIVER_SECRET": secret}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--port", "0"]
    if delay_ms is not None:
        cmd += ["--delay-ms", str(delay_ms)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env)  # stderr: ours
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != "ready":
            raise RuntimeError(f"receiver did not start (said {line!r})")
        yield f"http://127.0.0.1:{line[1]}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--delay-ms", type=float, default=None,
                        help="the threaded http.server, this long per delivery")  # fmt: skip
    args = parser.parse_args()
    secret = os.environ.get("RECEIVER_SECRET")
    if not secret:
        print("RECEIVER_SECRET is not set", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        if args.delay_ms is not None:
            serve_threaded(args.host, args.port, secret.encode(), args.delay_ms)
        else:
            asyncio.run(serve(args.host, args.port, secret.encode()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
