"""The workflow engine in-process: dispatch, steps, ports, waits, reschedules, cancels, retries."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from calflow.workflows.retry import retry_run
from calflow.workflows.upcoming import upcoming
from e2e.sandbox_process import SandboxProcess, free_port

from .conftest import Harness, booking_event

pytestmark = pytest.mark.slow

GET = "cal_com.GetBooking"


def get_step(step_id: str, **over: object) -> dict[str, object]:
    step: dict[str, object] = {
        "id": step_id,
        "action": GET,
        "integration": "main",
        "input": {"bookingUid": "{{ booking.uid }}"},
    }
    step.update(over)
    return step


async def test_an_event_starts_its_workflow_once_whatever_the_sources(
    any_harness: Harness,
) -> None:
    h = any_harness
    h.apply({"name": "look-up", "trigger": {"kinds": ["created"]}, "steps": [get_step("get")]})
    h.apply({"name": "on-cancel", "trigger": {"kinds": ["cancelled"]}, "steps": [get_step("x")]})
    event = booking_event()
    h.publish(event)
    h.publish(event.with_source("action"))  # calflow's own booking action, same change
    h.publish(event.with_source("replay"))
    (run,) = await h.finished(1)
    await asyncio.sleep(1.0)  # nothing else may start
    assert len(h.runs()) == 1
    shown = h.run(run["id"])
    assert shown["workflow"] == "look-up" and shown["status"] == "succeeded"
    (step,) = shown["steps"]
    assert step["input"] == {"bookingUid": "uid-e1"}
    assert step["port"] == "not_found"  # the sandbox has no such booking: an answer, not a failure


async def test_ports_route_to_later_steps(harness: Harness) -> None:
    h = harness
    h.apply({
        "name": "routed",
        "trigger": {"kinds": ["created"]},
        "steps": [
            get_step("get", on={"not_found": "fallback"}),
            get_step("skipped"),
            get_step("fallback", input={"bookingUid": "{{ booking.uid }}-{{ steps.get.port }}"}),
        ],
    })  # fmt: skip
    h.publish(booking_event())
    (run,) = await h.finished(1)
    shown = h.run(run["id"])
    assert [s["step"] for s in shown["steps"]] == ["get", "fallback"]
    assert shown["steps"][1]["input"] == {"bookingUid": "uid-e1-not_found"}
    assert shown["status"] == "succeeded"


async def test_a_failure_without_a_route_dead_letters_and_retry_resumes_from_it(
    harness: Harness, sandbox: SandboxProcess
) -> None:
    h = harness
    dead_url = f"http://127.0.0.1:{free_port()}/calcom"
    h.store.add("cal_com", "broken", {"base_url": dead_url}, {"api_key": "cal_live_x"})
    h.apply({
        "name": "fragile",
        "trigger": {"kinds": ["created"]},
        "steps": [
            get_step("first"),
            get_step("second", integration="broken",
                     retry={"max_attempts": 2, "backoff": "0.5s"}),
        ],
    })  # fmt: skip
    h.publish(booking_event())
    (run,) = await h.finished(1)
    shown = h.run(run["id"])
    assert shown["status"] == "failed" and shown["dead"] is True
    assert shown["error"]["step"] == "second"
    attempts = [(s["step"], s["attempt"], s["status"]) for s in shown["steps"]]
    assert attempts == [("first", 1, "succeeded"), ("second", 1, "failed"),
                        ("second", 2, "failed")]  # fmt: skip
    assert [r["id"] for r in h.runs(dead=True)] == [run["id"]]

    h.store.update("broken", {"base_url": sandbox.calcom}, {"api_key": "cal_live_engine_tests"})
    answer = await asyncio.to_thread(retry_run, run["id"], h.store, h.engine.settings)
    assert answer["from_step"] == "second" and answer["attempt"] == 2

    def retried() -> bool:
        return h.run(run["id"])["status"] == "succeeded"

    await h.until(retried, what="the retried run to succeed")
    steps = [(s["step"], s["attempt"], s["status"]) for s in h.run(run["id"])["steps"]]
    assert steps.count(("first", 1, "succeeded")) == 1  # not sent again
    assert steps[-1] == ("second", 3, "succeeded")  # the attempts go on counting
    assert h.runs(dead=True) == []


async def test_a_reminder_waits_and_moves_with_a_reschedule(harness: Harness) -> None:
    h = harness
    h.apply({
        "name": "reminder",
        "trigger": {"kinds": ["created"]},
        "steps": [get_step("remind", at={"before_start": "3597s"})],
    })  # fmt: skip
    start = datetime.now(UTC) + timedelta(hours=1)
    h.publish(booking_event(start=start, end=start + timedelta(minutes=30)))

    def waiting() -> dict[str, object] | None:
        runs = h.runs(status="waiting")
        return runs[0] if runs else None

    run = await h.until(waiting, what="the reminder to wait")
    due = datetime.fromisoformat(str(run["next_due_at"]))
    assert abs((due - (start - timedelta(seconds=3597))).total_seconds()) < 1

    new_start = start + timedelta(days=1)
    h.publish(booking_event("rescheduled", booking_uid="uid-e2", previous_uid="uid-e1",
                            start=new_start, end=new_start + timedelta(minutes=30)))  # fmt: skip

    def moved() -> bool:
        r = h.run(str(run["id"]))
        return bool(r["next_due_at"]) and datetime.fromisoformat(r["next_due_at"]) > due

    await h.until(moved, what="the reminder to move")
    await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 1.5)
    shown = h.run(str(run["id"]))
    assert shown["status"] == "waiting" and shown["steps"] == []  # not sent at the old time
    assert shown["booking_uid"] == "uid-e2"
    expected = new_start - timedelta(seconds=3597)
    assert abs((datetime.fromisoformat(shown["next_due_at"]) - expected).total_seconds()) < 1
    assert len(h.runs()) == 1  # the reschedule moved the run, it did not start another
    ahead = upcoming(shown, h.engine.services.workflows, h.inbox)
    assert [(u["step"], u["at"]) for u in ahead] == [("remind", "before_start: 3597s")]
    assert abs((datetime.fromisoformat(ahead[0]["due_at"]) - expected).total_seconds()) < 1


async def test_a_reminder_that_falls_due_has_its_lateness_observed(harness: Harness) -> None:
    h = harness
    sample = ("calflow_step_lateness_seconds_count", {"app": "cal_com", "action": "GetBooking"})
    before = REGISTRY.get_sample_value(*sample) or 0
    h.apply({
        "name": "soon",
        "trigger": {"kinds": ["created"]},
        "steps": [get_step("remind", at={"before_start": "3599s"})],  # due in about 1 s
    })  # fmt: skip
    start = datetime.now(UTC) + timedelta(hours=1)
    h.publish(booking_event(start=start, end=start + timedelta(minutes=30)))
    await h.until(lambda: h.runs(status="succeeded"), what="the reminder to run")
    assert REGISTRY.get_sample_value(*sample) == before + 1  # once, on its first attempt


async def test_a_cancel_cancels_pending_reminders_with_the_reason(harness: Harness) -> None:
    h = harness
    h.apply({
        "name": "reminder",
        "trigger": {"kinds": ["created"]},
        "steps": [get_step("remind", at={"before_start": "1h"})],
    })  # fmt: skip
    h.publish(booking_event())
    await h.until(lambda: h.runs(status="waiting"), what="the reminder to wait")
    h.publish(booking_event("cancelled", reason="Host is sick"))
    (run,) = await h.finished(1)
    assert run["status"] == "cancelled"
    assert "Host is sick" in (run["cancel_reason"] or "")
    assert [s["status"] for s in h.run(run["id"])["steps"]] == ["cancelled"]


async def test_a_late_created_after_a_cancel_starts_nothing(harness: Harness) -> None:
    h = harness
    h.apply({"name": "on-created", "trigger": {"kinds": ["created"]},
             "steps": [get_step("remind", at={"before_start": "1h"})]})  # fmt: skip
    now = datetime.now(UTC)
    cancelled = h.publish(booking_event("cancelled", occurred_at=now))
    late = h.publish(booking_event("created", occurred_at=now - timedelta(minutes=5)))
    assert late.stale

    def dispatched() -> bool:
        return all(h.inbox.get(p.event_id)["dispatched"] for p in (cancelled, late))

    await h.until(dispatched, what="both events to be dispatched")
    await asyncio.sleep(0.5)
    assert h.runs() == []


async def test_a_template_error_is_a_clear_step_failure(harness: Harness) -> None:
    h = harness
    # apply checks the event model; what is under metadata is only known when it runs
    typo = get_step("get", input={"bookingUid": "{{ booking.metadata.nickname }}"})
    h.apply({"name": "typo", "trigger": {"kinds": ["created"]}, "steps": [typo]})
    h.publish(booking_event())
    (run,) = await h.finished(1)
    assert run["status"] == "failed" and run["error"]["code"] == "TEMPLATE_ERROR"
    assert "nickname" in run["error"]["message"]


async def test_a_reminder_whose_time_has_passed_is_skipped(harness: Harness) -> None:
    h = harness
    steps = [get_step("remind", at={"before_start": "24h"}), get_step("after")]
    h.apply({"name": "late", "trigger": {"kinds": ["created"]}, "steps": steps})
    start = datetime.now(UTC) + timedelta(minutes=10)
    h.publish(booking_event(start=start, end=start + timedelta(minutes=30)))
    (run,) = await h.finished(1)
    steps = h.run(run["id"])["steps"]
    assert [(s["step"], s["status"]) for s in steps] == [("remind", "skipped"),
                                                         ("after", "succeeded")]  # fmt: skip


async def test_trigger_filters_choose_the_events(harness: Harness) -> None:
    h = harness
    h.apply({"name": "sms-only", "trigger": {"kinds": ["created"], "attendee_has_phone": True,
             "event_types": ["30min"]}, "steps": [get_step("get")]})  # fmt: skip
    no_phone = booking_event(booking_uid="uid-nophone",
                             attendees=(booking_event().attendees[0].__class__(
                                 name="Bo", email="bo@example.com"),))  # fmt: skip
    h.publish(no_phone)
    h.publish(booking_event(booking_uid="uid-phone"))
    (run,) = await h.finished(1)
    await asyncio.sleep(0.5)
    assert [r["booking_uid"] for r in h.runs()] == ["uid-phone"]
    assert run["booking_uid"] == "uid-phone"
