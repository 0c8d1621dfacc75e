"""A real ``calflow serve`` with a signed-webhook integration, and a latency probe.

``guarded_server(tmp_path, **settings)`` starts ``calflow serve`` as a process (through
``e2e.serve_process``) on a fresh home (SQLite, or ``database_url``) holding one
Cal.com integration with a webhook secret; ``settings`` become ``CALFLOW_*`` variables
(``header_timeout_s=2`` → ``CALFLOW_HEADER_TIMEOUT_S=2``).

``LatencyProbe(server)`` runs beside an attack: every ``interval_s`` it requests
``GET /healthz`` and posts a Cal.com delivery signed as the sandbox signs them, each on
a new connection (as a load balancer's probe and a provider do), and records every
answer's status, ``Retry-After`` and duration (an exception counts as a failure).

``SlowClient`` is one raw socket that sends its bytes slowly and records when and how
the server ended it.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from calflow.db.engine import reset_engines
from calflow.sandbox.calcom.webhooks import dumps, sign
from e2e.serve_process import CalflowHome, ServeProcess, serve_process

WEBHOOK_SECRET = "whsec_security_probe"


@dataclass
class Guarded:
    """A running server, its home and the hook path of its signed integration."""

    server: ServeProcess
    home: CalflowHome
    hook_path: str

    @property
    def port(self) -> int:
        return int(self.server.url.rsplit(":", 1)[1])


@contextmanager
def guarded_server(
    tmp_path: Path, database_url: str | None = None, **settings: object
) -> Iterator[Guarded]:
    """``calflow serve`` on a fresh home with one signed Cal.com integration."""
    home = CalflowHome(tmp_path / "home", database_url)
    store = home.store()
    found = store.add(
        "cal_com",
        "probe",
        {"base_url": "http://cal.invalid"},
        {"api_key": "cal_live_probe", "webhook_secret": WEBHOOK_SECRET},
    )
    reset_engines()
    env = {**home.env(), **{f"CALFLOW_{k.upper()}": str(v) for k, v in settings.items()}}
    with serve_process(env) as server:
        yield Guarded(server, home, f"/hooks/{found.id}")


def signed_delivery() -> tuple[bytes, dict[str, str]]:
    """A new Cal.com ``BOOKING_CREATED`` delivery (its own uid) and its signed headers."""
    uid = f"probe-{uuid.uuid4().hex[:12]}"
    body = dumps(
        {
            "triggerEvent": "BOOKING_CREATED",
            "createdAt": "2026-11-20T10:00:00.000Z",
            "payload": {
                "type": "30min",
                "title": "Probe",
                "startTime": "2026-12-01T09:00:00Z",
                "endTime": "2026-12-01T09:30:00Z",
                "organizer": {"id": 1, "name": "Host", "email": "host@example.com",
                              "timeZone": "Europe/Paris"},
                "attendees": [{"name": "Ann Lee", "email": "ann@example.com",
                               "timeZone": "Europe/Paris"}],
                "uid": uid,
                "bookingId": 9,
                "eventTypeId": 101,
                "status": "ACCEPTED",
            },
        }
    ).encode()  # fmt: skip
    headers = {
        "content-type": "application/json",
        "x-cal-signature-256": sign(WEBHOOK_SECRET, body),
    }
    return body, headers


@dataclass(frozen=True)
class Answer:
    """One probe request: what, its status (0: it failed), ``Retry-After``, seconds."""

    what: str
    status: int
    retry_after: str | None
    seconds: float
    error: str = ""


@dataclass
class LatencyProbe:
    """``/healthz`` and a signed webhook every ``interval_s``, in a thread, until stopped."""

    guarded: Guarded
    interval_s: float = 0.1
    timeout_s: float = 10.0
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> LatencyProbe:
        self._thread = threading.Thread(target=self._run, name="latency-probe", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=self.timeout_s * 3)

    def _run(self) -> None:
        url = self.guarded.server.url
        while not self._stop.is_set():
            started = time.monotonic()
            self._ask("healthz", "GET", f"{url}/healthz", None, {})
            body, headers = signed_delivery()
            self._ask("webhook", "POST", f"{url}{self.guarded.hook_path}", body, headers)
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def _ask(
        self, what: str, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> None:
        started = time.monotonic()
        try:  # a client of its own: a new connection for every request
            with httpx.Client(timeout=self.timeout_s) as client:
                resp = client.request(method, url, content=body, headers=headers)
            answer = Answer(what, resp.status_code, resp.headers.get("retry-after"),
                            time.monotonic() - started)  # fmt: skip
        except httpx.HTTPError as exc:
            answer = Answer(what, 0, None, time.monotonic() - started, repr(exc))
        self.answers.append(answer)

    def of(self, what: str) -> list[Answer]:
        return [a for a in self.answers if a.what == what]

    def slowest(self) -> float:
        return max(a.seconds for a in self.answers)

    def assert_each_within(self, seconds: float) -> None:
        """Every request answered (no failure), each within ``seconds``."""
        assert self.of("healthz") and self.of("webhook"), "the probe made no request"
        failed = [a for a in self.answers if a.status == 0]
        assert not failed, f"probe requests failed: {failed[:3]}"
        slow = [a for a in self.answers if a.seconds > seconds]
        assert not slow, f"{len(slow)} probe requests took over {seconds} s: {slow[:3]}"


@dataclass
class SlowClient:
    """A socket that sends ``head`` (and then ``body``) one byte every ``gap_s``.

    ``ended_after`` is the seconds from ``clock_from`` (``"connect"``, or ``"headers"``:
    when the last header byte was sent) to the server's closing; ``answer`` what the
    server sent before closing. A ``head`` with ``Expect: 100-continue`` waits for the
    server's ``100 Continue`` before sending its body, so ``in_flight`` is set once
    the app is reading the request."""

    head: bytes
    body: bytes = b""
    gap_s: float = 0.25
    clock_from: str = "connect"
    answer: bytes = b""
    ended_after: float | None = None

    async def run(self, port: int, give_up_s: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        start = time.monotonic()
        reading = asyncio.create_task(self._read(reader))
        try:
            slow_part = self.head
            if self.clock_from == "headers":
                writer.write(self.head)
                await writer.drain()
                start = time.monotonic()
                slow_part = self.body
                if b"expect: 100-continue" in self.head.lower():
                    await asyncio.wait(
                        [reading, asyncio.create_task(self.in_flight.wait())],
                        timeout=give_up_s,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
            for i in range(len(slow_part)):
                if reading.done():
                    break
                writer.write(slow_part[i : i + 1])
                await writer.drain()
                await asyncio.wait([reading], timeout=self.gap_s)
            await asyncio.wait_for(asyncio.shield(reading), timeout=give_up_s)
        except (ConnectionError, TimeoutError):
            pass
        finally:
            if reading.done() and self.ended_after is None:
                self.ended_after = self._ended_at - start
            reading.cancel()
            writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while chunk := await reader.read(4096):
                self.answer += chunk
                if self.answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"):
                    self.in_flight.set()
        except ConnectionError:
            pass
        self._ended_at = time.monotonic()

    _ended_at: float = 0.0
    in_flight: asyncio.Event = field(default_factory=asyncio.Event)


def raw_request(port: int, head: bytes, wait_s: float = 5.0) -> bytes:
    """Send ``head`` on a new socket and return what the server answers until it closes
    (or ``wait_s`` passes)."""

    async def go() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head)
        await writer.drain()
        out = b""
        try:
            while chunk := await asyncio.wait_for(reader.read(4096), timeout=wait_s):
                out += chunk
        except (TimeoutError, ConnectionError):
            pass
        writer.close()
        return out

    return asyncio.run(go())
