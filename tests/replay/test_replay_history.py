"""Replaying history into calflow starts no workflow for old changes (issue #14, item 7).

A sandbox process of its own holds three Cal.com bookings: two made and one of them
cancelled two days ago (the sandbox clock set back), one made just now. Replayed
``--into calflow`` with the workflow engine running, only the recent booking starts its
workflow; with ``run_workflows`` every change does, the old cancellation included. SMS
are counted at the sandbox's Twilio.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from calflow.replay import ReplayEngine, ReplayOptions
from e2e.sandbox_process import SandboxProcess, sandbox_process
from engine.conftest import API_KEY, Harness, _harness

TWO_DAYS_S = 2 * 86400


@dataclass(frozen=True)
class History:
    sandbox: SandboxProcess
    old_kept: str
    old_cancelled: str
    recent: str
    twilio: dict[str, Any]


def _book(sb: SandboxProcess, start: str, phone: str) -> str:
    body = {"eventTypeId": 101, "start": start,
            "attendee": {"name": "Ann Lee", "email": f"{phone[1:]}@example.com",
                         "timeZone": "Europe/Paris", "phoneNumber": phone}}  # fmt: skip
    resp = httpx.post(f"{sb.root}/_sandbox/calcom/bookings", json=body, timeout=30)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["data"]["uid"])


def _open_starts(sb: SandboxProcess) -> list[str]:
    first = datetime.now(UTC).date() + timedelta(days=3)
    resp = httpx.get(
        f"{sb.calcom}/v2/slots",
        params={"eventTypeId": 101, "start": first.isoformat(),
                "end": (first + timedelta(days=10)).isoformat()},
        headers={"cal-api-version": "2024-09-04"},
        timeout=30,
    )  # fmt: skip
    resp.raise_for_status()
    return [s["start"] for day in resp.json()["data"].values() for s in day]


@pytest.fixture(scope="module")
def history() -> Iterator[History]:
    """Two bookings changed two days ago (one cancelled), one made now."""
    with sandbox_process(API_KEY, seed=0) as sb:
        starts = _open_starts(sb)
        sb.control("clock", {"offset_s": -TWO_DAYS_S})
        old_kept = _book(sb, starts[0], "+33612970001")
        old_cancelled = _book(sb, starts[1], "+33612970002")
        resp = httpx.post(
            f"{sb.calcom}/v2/bookings/{old_cancelled}/cancel",
            json={"cancellationReason": "Plans changed"},
            headers={"Authorization": f"Bearer {API_KEY}", "cal-api-version": "2024-08-13"},
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        sb.control("clock", {"offset_s": 0})
        recent = _book(sb, starts[2], "+33612970003")
        twilio = httpx.get(f"{sb.root}/_sandbox/state", timeout=30).json()["twilio"]
        yield History(sb, old_kept, old_cancelled, recent, twilio)


@pytest.fixture
async def h(tmp_path: Path, history: History) -> AsyncIterator[Harness]:
    """The workflow engine on a fresh SQLite home, with an ``sms`` Twilio integration."""
    async for harness in _harness(
        tmp_path, f"sqlite:///{tmp_path / 'calflow.db'}", history.sandbox
    ):
        harness.store.add("twilio", "sms",
                          {"base_url": f"{history.sandbox.root}/twilio",
                           "account_sid": history.twilio["account_sid"],
                           "from_number": "+15005550006"},
                          {"auth_token": history.twilio["auth_token"]})  # fmt: skip
        yield harness


def _flows(h: Harness, tag: str) -> None:
    for kind in ("created", "cancelled"):
        body = f"{tag} {kind} " + "{{ booking.uid }}"
        h.apply({"name": f"on-{kind}", "trigger": {"kinds": [kind]},
                 "steps": [{"id": "sms", "action": "twilio.SendSms", "integration": "sms",
                            "input": {"to": "{{ attendee.phone }}", "body": body}}]})  # fmt: skip


def _sms(history: History, tag: str) -> list[str]:
    resp = httpx.get(f"{history.sandbox.root}/_sandbox/twilio/messages", timeout=30)
    resp.raise_for_status()
    return sorted(str(m["body"]) for m in resp.json() if str(m["body"]).startswith(f"{tag} "))


async def _replay(h: Harness, **options: Any) -> dict[str, Any]:
    engine = ReplayEngine(h.store, backoff_base_s=0.02)
    summary = await engine.start(ReplayOptions(integration="main", into="calflow", **options))
    assert summary.ok and summary.counts.sent == 3, summary.to_dict()

    def dispatched() -> bool:
        events = h.inbox.list()
        return len(events) == 3 and all(h.inbox.get(e["id"])["dispatched"] for e in events)

    await h.until(dispatched, what="the replayed events to be dispatched")
    return summary.to_dict()


async def test_replayed_history_starts_no_workflow_for_old_changes(
    h: Harness, history: History
) -> None:
    _flows(h, "hist")
    summary = await _replay(h)
    assert summary["history"] is True
    (run,) = await h.finished(1)
    assert (run["workflow"], run["booking_uid"], run["status"]) == (
        "on-created", history.recent, "succeeded",
    )  # fmt: skip
    assert _sms(history, "hist") == [f"hist created {history.recent}"]  # no "cancelled" today
    events = {e["booking_uid"]: h.inbox.get(e["id"]) for e in h.inbox.list()}
    assert {uid: e["kind"] for uid, e in events.items()} == {
        history.old_kept: "created", history.old_cancelled: "cancelled", history.recent: "created",
    }  # fmt: skip
    assert all(e["event"]["history"] is True for e in events.values())
    old = datetime.fromisoformat(events[history.old_cancelled]["event"]["occurred_at"])
    assert datetime.now(UTC) - old > timedelta(days=1, hours=23)
    assert len(h.runs()) == 1


async def test_run_workflows_lets_old_changes_start_them(h: Harness, history: History) -> None:
    _flows(h, "live")
    summary = await _replay(h, run_workflows=True)
    assert "history" not in summary
    runs = await h.finished(3)
    assert sorted((r["workflow"], r["booking_uid"]) for r in runs) == sorted([
        ("on-created", history.old_kept), ("on-cancelled", history.old_cancelled),
        ("on-created", history.recent),
    ])  # fmt: skip
    assert _sms(history, "live") == sorted([
        f"live created {history.old_kept}", f"live cancelled {history.old_cancelled}",
        f"live created {history.recent}",
    ])  # fmt: skip
