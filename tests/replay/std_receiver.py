"""A receiver that verifies every POST with ``standardwebhooks.Webhook.verify`` (what a
Standard Webhooks consumer runs), in a thread of the test process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class StdReceiver:
    """What arrived: every delivery's headers, and which verified."""

    url: str
    verified: list[dict[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def std_receiver(secret: str) -> Iterator[StdReceiver]:
    """A server on a free loopback port; ``.url`` is where to replay to."""
    webhook = Webhook(secret)
    state: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            rec: StdReceiver = state["rec"]
            try:
                webhook.verify(body, headers)
            except WebhookVerificationError as exc:
                with rec.lock:
                    rec.refused.append(str(exc))
                self._answer(401, b'{"error": "bad signature"}')
                return
            with rec.lock:
                rec.verified.append(headers)
            self._answer(200, b'{"ok": true}')

        def _answer(self, status: int, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state["rec"] = StdReceiver(f"http://127.0.0.1:{server.server_address[1]}/hooks/std")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["rec"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
