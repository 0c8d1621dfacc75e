"""A provider stand-in that only records: every request it receives, answered with an
empty success, so a test can tell that calflow sent nothing (or exactly what it sent)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorder:
    """The stand-in's URL and the ``(method, path, query)`` of each request it received."""

    url: str
    requests: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [path for _, path, _ in self.requests]


@contextmanager
def recording_server() -> Iterator[Recorder]:
    """A threaded HTTP server on 127.0.0.1 answering ``{"status": "success", "data": {}}``."""
    recorder = Recorder("")

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            parts = urlsplit(self.path)
            recorder.requests.append((self.command, parts.path, parse_qs(parts.query)))
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            body = json.dumps({"status": "success", "data": {}}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
