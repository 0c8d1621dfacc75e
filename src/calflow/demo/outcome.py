"""What the demo expects to see, and the summary it reports (also as JSON)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .report import clock
from .scenario import ADA_PHONE, CANCEL_REASON, Outcome
from .watch import Watcher

HOST_EMAIL = "demo@example.com"
"""The sandbox's host (the organizer the cancellation email goes to)."""


@dataclass(frozen=True)
class Expectation:
    name: str
    what: str
    met: Callable[[], bool]


def _event(w: Watcher, uid: str, kind: str) -> dict[str, Any] | None:
    return next(
        (e for e in w.events.values() if e["booking_uid"] == uid and e["kind"] == kind), None
    )


def expectations(w: Watcher, out: Outcome) -> list[Expectation]:
    def one_event(uid: str, kind: str, sources: set[str]) -> Callable[[], bool]:
        return lambda: sources <= set((_event(w, uid, kind) or {}).get("sources") or [])

    def sms(text: str) -> Callable[[], bool]:
        return lambda: any(m["to"] == ADA_PHONE and text in m["body"] for m in w.sms)

    def reminder_moved() -> bool:
        due = w.due.get(out.reminder_run) or []
        return len(due) > 1 and due[-1] != due[0]

    def run_is(run_id: str, status: str, reason: str = "") -> Callable[[], bool]:
        def check() -> bool:
            run = w.runs.get(run_id) or {}
            return run.get("status") == status and reason in (run.get("cancel_reason") or "")

        return check

    dues = w.due.get(out.reminder_run) or []
    due = dues[-1] if dues else None
    return [
        Expectation("api_booking_one_event", "Ada's API booking and its webhook as one event",
                    one_event(out.api_uid, "created", {"action", "webhook"})),
        Expectation("web_booking_event", "the web booking's webhook",
                    one_event(out.web_uid, "created", {"webhook"})),
        Expectation("reminder_moved", "Ada's reminder moving with the reschedule", reminder_moved),
        Expectation("rescheduled_sms", f"the 'moved' SMS to {ADA_PHONE}", sms("moved to")),
        Expectation("reminder_sms", f"the reminder SMS to {ADA_PHONE} (due {clock(due)})",
                    sms("a reminder")),
        Expectation("reminder_run_succeeded", "Ada's reminder run succeeding",
                    run_is(out.reminder_run, "succeeded")),
        Expectation("cancel_email", f"the cancellation email to {HOST_EMAIL}",
                    lambda: any(HOST_EMAIL in m["to"] for m in w.emails)),
        Expectation("cancelled_run", "Grace's reminder run cancelled with the reason",
                    run_is(out.web_reminder_run, "cancelled", CANCEL_REASON)),
    ]  # fmt: skip


def summary(
    w: Watcher,
    out: Outcome,
    expected: list[Expectation],
    *,
    setup: dict[str, Any],
    duration_s: float,
    failure: str | None = None,
) -> dict[str, Any]:
    """Everything the demo did and saw, JSON-ready (``--json`` prints it)."""
    met = {e.name: e.met() for e in expected}
    missing = [failure] if failure else []
    missing += [f"not seen: {e.what}" for e in expected if not met[e.name]]
    mine = set(w.labels)
    events = [
        {"id": e["id"], "kind": e["kind"], "booking_uid": e["booking_uid"],
         "source": e["source"], "sources": e["sources"], "deliveries": e["deliveries"],
         "dispatched": e["dispatched"]}
        for e in w.events.values() if e["booking_uid"] in mine
    ]  # fmt: skip
    runs = [
        {"id": r["id"], "workflow": r["workflow"], "booking_uid": r["booking_uid"],
         "event_id": r["event_id"], "status": r["status"], "next_due_at": r["next_due_at"],
         "due": w.due.get(r["id"], []), "cancel_reason": r["cancel_reason"],
         "error": r["error"]}
        for r in sorted(w.runs.values(), key=lambda r: r["created_at"])
        if r["booking_uid"] in mine
    ]  # fmt: skip
    return {
        "ok": not missing,
        "duration_s": round(duration_s, 1),
        **setup,
        "bookings": {"api": out.api_uid, "rescheduled": out.moved_uid, "web": out.web_uid},
        "reminder": {"run": out.reminder_run, "due": w.due.get(out.reminder_run, [])},
        "web_reminder_run": out.web_reminder_run,
        "steps": out.steps,
        "events": events,
        "runs": runs,
        "sms": w.sms,
        "emails": w.emails,
        "expected": met,
        "missing": missing,
        "labels": dict(w.labels),
    }
