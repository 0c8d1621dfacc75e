"""The demo's watcher tells a run's due times, not the moment a move woke it."""

from __future__ import annotations

from calflow.demo.watch import scheduled_due


def test_a_waiting_run_is_due_at_its_next_due_at() -> None:
    run = {"next_due_at": "2026-12-04T03:12:40+00:00", "updated_at": "2026-12-04T03:11:20+00:00"}
    assert scheduled_due(run) == "2026-12-04T03:12:40+00:00"


def test_a_woken_run_waits_for_nothing_yet() -> None:
    # RunStore.wake sets next_due_at and updated_at to the same instant
    run = {"next_due_at": "2026-12-04T03:11:30+00:00", "updated_at": "2026-12-04T03:11:30+00:00"}
    assert scheduled_due(run) is None


def test_a_run_with_no_due_time() -> None:
    run = {"next_due_at": None, "updated_at": "2026-12-04T03:11:30+00:00"}
    assert scheduled_due(run) is None
