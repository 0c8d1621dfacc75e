"""How a run follows its booking, and when one of its steps is skipped instead of run.

Runs started by a booking's (or a seat's) creation follow it: they take each move's new
uid, start and end, and a move is "when calflow learned" of the new times. A run started
by a reschedule is about that one reschedule (the "moved to …" notice): it follows the
booking's uid and ends if the booking is cancelled, but keeps the times of the reschedule
that started it, so two quick reschedules give two notices, each with its own new time.

A timed step is skipped, not run:

- ``skip_if_past`` (the default): it was due more than ``PAST_GRACE_S`` before calflow
  learned of the booking or of its move (a 24 h reminder for a booking made an hour
  ahead). One that fell due while the engine was down is sent late, not skipped.
- in a reschedule's own run, a step timed from the booking's start or end once the
  booking has moved again: the later reschedule started its own run for those times.

A skipped step goes where its ``on.skipped`` route says, else where the action's success
port routes (``StepDef.after_skip``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from calflow.workflows.definition import StepDef
from calflow.workflows.steps import PAST_GRACE_S, parse_dt

MOVES = ("rescheduled", "attendee_rescheduled")
"""Event kinds that move a booking; a run they start keeps their times (``pinned``)."""


def follow(state: dict[str, Any], booking: dict[str, Any], news: dict[str, Any]) -> str | None:
    """Take the booking's news (``Services.booking_news``, not ended) into ``booking``;
    returns the booking's current start when a pinned run's booking has moved on."""
    if state.get("pinned"):
        booking["uid"] = news.get("uid") or booking.get("uid")
        now_at, own_at = parse_dt(news.get("start")), parse_dt(booking.get("start"))
        return str(news["start"]) if now_at and own_at and now_at != own_at else None
    if news.get("start") and parse_dt(news.get("start")) != parse_dt(booking.get("start")):
        booking["moved_at"] = datetime.now(UTC).isoformat()
    booking.update({k: v for k, v in news.items() if k in ("uid", "start", "end")})
    return None


def skip_reason(
    step: StepDef,
    due: datetime | None,
    booking: dict[str, Any],
    state: dict[str, Any],
    moved_to: str | None,
) -> dict[str, Any] | None:
    """Why ``step``, due at ``due``, is skipped (what the trace records), or None to run
    it. ``moved_to``: what :func:`follow` returned."""
    if due is None:
        return None
    if moved_to is not None and step.at.booking_relative:
        return {
            "reason": f"the booking moved again (to {moved_to}) after the reschedule that "
            "started this run; the later reschedule's own run has this step at its time",
            "rule": "moved_again",
            "due_at": due.isoformat(),
            "booking_start": moved_to,
        }
    learned = parse_dt(booking.get("moved_at") or state.get("received_at"))
    if learned is None or not step.skip_if_past:
        return None
    late = (learned - due).total_seconds()
    if late <= PAST_GRACE_S:
        return None
    return {
        "reason": f"its time had passed: due at {due.isoformat()}, {_span(late)} before "
        f"calflow learned of the booking{' move' if booking.get('moved_at') else ''} at "
        f"{learned.isoformat()} (skip_if_past skips a step more than "
        f"{PAST_GRACE_S:g} s past due)",
        "rule": "skip_if_past",
        "due_at": due.isoformat(),
        "learned_at": learned.isoformat(),
        "grace_s": PAST_GRACE_S,
    }


def _span(seconds: float) -> str:
    """``93784`` → ``1d 2h 3m``; under a minute, seconds."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{mins}m" if mins else ""]
    return " ".join(p for p in parts if p)


__all__ = ["MOVES", "follow", "skip_reason"]
