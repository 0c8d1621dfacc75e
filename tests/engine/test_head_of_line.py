"""One slow provider answer delays only its own run (a real worker, the Twilio sandbox).

The sandbox holds its answer to the slow magic number (``+15005550504``) for 8 s. The
runs due with it, in its batch, record their outcomes and move on; a reminder that falls
due while the slow call hangs goes out on time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from calflow.db.engine import reset_engines
from e2e.sandbox_process import SandboxProcess

from .test_faults import _setup, _sms_flow, _with_phone
from .test_processes import calflow_process, poll

pytestmark = pytest.mark.slow

SLOW_TO = "+15005550504"
HOLD_S = 8.0
LATE_S = 1.0


def test_a_hanging_provider_call_delays_only_its_own_run(
    tmp_path: Path, sandbox: SandboxProcess
) -> None:
    flow = _sms_flow({"before_start": "10s"}, "hol {{ booking.uid }}", attempts=1)
    inbox, runs = _setup(tmp_path, sandbox, flow)
    httpx.post(f"{sandbox.root}/_sandbox/faults", json={"twilio_slow_s": HOLD_S}, timeout=10)
    try:
        with calflow_process(["worker", "--id", "hol"], {"CALFLOW_HOME": str(tmp_path)}):
            first = datetime.now(UTC) + timedelta(seconds=16)  # due 6 s from now
            events = [_with_phone("hol-slow", SLOW_TO, start=first)]
            # due with the slow one (its batch), and while it hangs (later batches)
            events += [_with_phone(f"hol-{n}", f"+3361297{n:04d}", start=first) for n in range(12)]
            events += [
                _with_phone(f"hol-later-{n}", f"+3361296{n:04d}",
                            start=first + timedelta(seconds=2 + n))
                for n in range(4)
            ]  # fmt: skip
            inbox.publish_many([(e, None) for e in events])
            poll(lambda: sum(r["status"] in ("succeeded", "failed") for r in runs.list())
                 == len(events) or None, wait_s=60, what="every run to end")  # fmt: skip
    finally:
        httpx.post(f"{sandbox.root}/_sandbox/faults", json={"twilio_slow_s": 5.0}, timeout=10)
    by_uid = {r["booking_uid"]: runs.get(r["id"]) for r in runs.list()}
    slow = by_uid.pop("hol-slow")
    (slow_step,) = slow["steps"]
    slow_ended = datetime.fromisoformat(slow_step["finished_at"])
    slow_began = datetime.fromisoformat(slow_step["started_at"])
    assert (slow_ended - slow_began).total_seconds() >= HOLD_S - 0.5  # it really hung
    for uid, run in by_uid.items():
        (step,) = run["steps"]
        assert run["status"] == "succeeded", run
        event = next(e for e in events if e.booking_uid == uid)
        assert event.start is not None
        due = event.start - timedelta(seconds=10)
        late = (datetime.fromisoformat(step["started_at"]) - due).total_seconds()
        assert late <= LATE_S, (uid, late)
        # and its outcome was stored while the slow call still hung
        assert datetime.fromisoformat(run["updated_at"]) < slow_ended, uid
    reset_engines()
