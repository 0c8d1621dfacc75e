"""``calflow serve`` as a real process for the operator tests, and what they send it.

:func:`serving` starts ``calflow serve ARGS`` on a free port of a :class:`CalflowHome`,
waits for ``/healthz`` and stops it on exit; its stdout (the banner) and stderr (the log)
are files the test reads. :func:`calcom_delivery` is a Cal.com ``BOOKING_CREATED``
delivery signed with :data:`WEBHOOK_SECRET`, for a booking two days from now.
"""

from __future__ import annotations

import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import httpx

from calflow.db.engine import reset_engines
from calflow.sandbox.calcom.webhooks import dumps, sign
from cli.conftest import calflow_command
from e2e.sandbox_process import child_env, free_port
from e2e.serve_process import CalflowHome, poll

WEBHOOK_SECRET = "whsec_ops_probe_8d1c"
API_KEY = "cal_live_ops_probe_51f0"


@dataclass
class Served:
    """A running ``calflow serve``: its URL, process and output files."""

    url: str
    proc: subprocess.Popen[bytes]
    out: IO[bytes]
    err: IO[bytes]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stdout(self) -> str:
        return Path(self.out.name).read_text(errors="replace")

    def stderr(self) -> str:
        return Path(self.err.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def start(home: CalflowHome, *args: str, env: Mapping[str, str] | None = None) -> Served:
    """``calflow serve --host 127.0.0.1 --port <free> ARGS`` on ``home``, answering
    ``/healthz`` (``AssertionError`` with its output if it stops or never answers)."""
    port = free_port()
    out = tempfile.NamedTemporaryFile(prefix="calflow-ops-", suffix=".out")  # noqa: SIM115
    err = tempfile.NamedTemporaryFile(prefix="calflow-ops-", suffix=".err")  # noqa: SIM115
    cmd = [*calflow_command(), "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=child_env(**home.env(), **(env or {})))
    served = Served(f"http://127.0.0.1:{port}", proc, out, err)

    def up() -> bool:
        assert proc.poll() is None, f"serve exited {proc.returncode}: {served.stderr()}"
        return healthy(served.url)

    poll(up, 60, "calflow serve to answer /healthz")
    return served


@contextmanager
def serving(
    home: CalflowHome, *args: str, env: Mapping[str, str] | None = None
) -> Iterator[Served]:
    """:func:`start`, stopped (SIGTERM) when the block ends."""
    served = start(home, *args, env=env)
    try:
        yield served
    finally:
        served.stop()
        served.out.close()
        served.err.close()


def calcom_home(path: Path) -> tuple[CalflowHome, str]:
    """A fresh home with one Cal.com integration ``cal`` (webhook secret set); its id."""
    home = CalflowHome(path)
    found = home.store().add(
        "cal_com", "cal", {"base_url": "http://cal.invalid"},
        {"api_key": API_KEY, "webhook_secret": WEBHOOK_SECRET},
    )  # fmt: skip
    reset_engines()
    return home, found.id


def calcom_delivery(phone: str = "+14155550123") -> tuple[bytes, dict[str, str]]:
    """A new ``BOOKING_CREATED`` delivery (its own uid, two days ahead) and its headers."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    body = dumps(
        {
            "triggerEvent": "BOOKING_CREATED",
            "createdAt": datetime.now(UTC).isoformat(),
            "payload": {
                "type": "30min", "title": "Ops probe",
                "startTime": start.isoformat().replace("+00:00", "Z"),
                "endTime": (start + timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
                "organizer": {"id": 1, "name": "Host", "email": "host@example.com",
                              "timeZone": "Europe/Paris"},
                "attendees": [{"name": "Ann Lee", "email": "ann@example.com",
                               "timeZone": "Europe/Paris", "phoneNumber": phone}],
                "uid": f"ops-{uuid.uuid4().hex[:12]}", "bookingId": 9, "eventTypeId": 101,
                "status": "ACCEPTED",
            },
        }
    ).encode()  # fmt: skip
    headers = {
        "content-type": "application/json",
        "x-cal-signature-256": sign(WEBHOOK_SECRET, body),
    }
    return body, headers
