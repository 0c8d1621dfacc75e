"""The demo's story: bookings made, moved and cancelled, through calflow and on "the web".

1. Ada books through calflow's API path (``BookMeeting``, with her phone): the action
   publishes the booking (source ``action``) and Cal.com's webhook for it arrives as a
   duplicate delivery of the same event. Her SMS reminder is scheduled.
2. Alan tries the same slot: port ``conflict``.
3. Grace books on Cal.com's booking page (the sandbox's web path): only the signed
   webhook brings that one in.
4. Ada's booking is rescheduled (earlier): her reminder moves, and she is told by SMS.
5. Grace's booking is cancelled: her runs end ``cancelled`` with the reason, and the
   host gets an email.
6. An unknown booking uid is looked up: port ``not_found``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.markup import escape

from calflow.flowapp import ActionResult
from calflow.flowapp.runner import Runner
from calflow.net.clients import outbound_client
from calflow.netpolicy import EVERYTHING

from .prepare import CALCOM, EVENT_TYPE_ID
from .report import Timeline, clock
from .stack import Stack
from .watch import Watcher

REMINDER = "sms-reminder-24h"
LEAD_S = 80
"""Ada's meeting starts this long after she books; her reminder is due 40 s before."""
MOVE_S = -20
"""The reschedule moves her meeting (and so her reminder) 20 s earlier: her reminder is
then due about 20 s after she booked, and the reschedule has ample time to come first."""
WEB_LEAD = timedelta(minutes=40)
"""Grace's meeting, after Ada's (both have the same host)."""
LENGTH = timedelta(minutes=30)
ADA = {"name": "Ada Lovelace", "email": "ada@example.com", "timeZone": "Europe/Paris",
       "phoneNumber": "+33 6 12 34 56 78"}  # fmt: skip
ADA_PHONE = "+33612345678"
GRACE = {"name": "Grace Hopper", "email": "grace@example.com", "timeZone": "Europe/London",
         "phoneNumber": "+447700900123"}  # fmt: skip
ALAN = {"name": "Alan Turing", "email": "alan@example.com", "timeZone": "Europe/London"}
RESCHEDULE_REASON = "Ada can start a little earlier"
CANCEL_REASON = "Grace has a clash"


class DemoFailure(Exception):
    """A step of the story did not go as it should (the message says which)."""


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Plan:
    """When each meeting starts."""

    api_start: datetime
    moved_start: datetime
    web_start: datetime

    @classmethod
    def from_now(cls) -> Plan:
        now = datetime.now(UTC)
        start = datetime.fromtimestamp(math.ceil(now.timestamp()) + LEAD_S, UTC)
        return cls(start, start + timedelta(seconds=MOVE_S), start + WEB_LEAD)

    def spans(self) -> list[tuple[datetime, datetime]]:
        return [(s, s + LENGTH) for s in (self.api_start, self.moved_start, self.web_start)]


@dataclass
class Outcome:
    """What the story did: booking uids and every action's port."""

    api_uid: str = ""
    moved_uid: str = ""
    web_uid: str = ""
    reminder_run: str = ""
    web_reminder_run: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)


class Scenario:
    def __init__(self, stack: Stack, runner: Runner, watcher: Watcher, say: Timeline) -> None:
        self.stack, self.runner, self.watcher, self.say = stack, runner, watcher, say
        self.out = Outcome()

    async def _action(self, title: str, action: str, data: dict[str, Any], want: str,
                      detail: str = "") -> ActionResult:  # fmt: skip
        result = await self.runner.run_action("cal_com", action, data, CALCOM)
        self.out.steps.append({"step": title, "action": action, "port": result.port,
                               "success": result.success, "code": result.code})  # fmt: skip
        colour = "green" if result.port == want else "red"
        text = detail if result.port == want else (result.message or "")
        self.say("action", text, markup=f"{escape(title)} → [bold {colour}]{result.port}[/]  ")
        if result.port != want:
            raise DemoFailure(f"{title} answered on port {result.port!r}, not {want!r}: "
                              f"{result.message}")  # fmt: skip
        return result

    def _run_of(self, uid: str, status: str | None = None) -> str | None:
        for run in self.watcher.runs.values():
            mine = run["workflow"] == REMINDER and run["booking_uid"] == uid
            if mine and status in (None, run["status"]):
                return str(run["id"])
        return None

    async def _reminder_waiting(self, uid: str, who: str) -> str:
        return await self.watcher.until(
            lambda: self._run_of(uid, "waiting"), 30, f"the SMS reminder run of {who}'s booking"
        )

    async def run(self, plan: Plan) -> Outcome:
        out, say = self.out, self.say
        book = {"eventTypeId": EVENT_TYPE_ID, "start": _iso(plan.api_start), "attendee": ADA,
                "notes": "Booked by calflow demo"}  # fmt: skip
        when = clock(plan.api_start)
        booked = await self._action("BookMeeting", "BookMeeting", book, "success",
                                    f"Ada Lovelace at {when} (API booking)")  # fmt: skip
        out.api_uid = str(booked.data["uid"])
        self.watcher.labels[out.api_uid] = "Ada (API)"
        out.reminder_run = await self._reminder_waiting(out.api_uid, "Ada")

        again = {**book, "attendee": ALAN}
        await self._action("BookMeeting (same slot again)", "BookMeeting", again, "conflict",
                           "Alan Turing wanted the same slot: taken")  # fmt: skip

        out.web_uid = await self._web_booking(plan.web_start)
        self.watcher.labels[out.web_uid] = "Grace (web)"
        out.web_reminder_run = await self._reminder_waiting(out.web_uid, "Grace")

        move = {"bookingUid": out.api_uid, "start": _iso(plan.moved_start),
                "reschedulingReason": RESCHEDULE_REASON}  # fmt: skip
        moved = await self._action("RescheduleBooking", "RescheduleBooking", move, "success",
                                   f"Ada's meeting moves to {clock(plan.moved_start)}")  # fmt: skip
        out.moved_uid = str(moved.data["uid"])
        self.watcher.labels[out.moved_uid] = "Ada (moved)"
        await self.watcher.until(
            lambda: len(self.watcher.due.get(out.reminder_run, [])) > 1, 30, "the reminder's move"
        )

        cancel = {"bookingUid": out.web_uid, "cancellationReason": CANCEL_REASON}
        await self._action("CancelBooking", "CancelBooking", cancel, "success",
                           f"Grace's booking, reason “{CANCEL_REASON}”")  # fmt: skip
        unknown = {"bookingUid": "no-such-uid"}
        await self._action("GetBooking (unknown uid)", "GetBooking", unknown, "not_found",
                           "nothing to find")  # fmt: skip
        say("note", "Now calflow works on its own: the reminders fire at their (moved) times.")
        return out

    async def _web_booking(self, start: datetime) -> str:
        """A booking on Cal.com's own booking page: the sandbox control, signed webhook."""
        body = {"eventTypeId": EVENT_TYPE_ID, "start": _iso(start), "attendee": GRACE}
        async with outbound_client(EVERYTHING, timeout_s=10) as client:  # the local sandbox
            resp = await client.post(f"{self.stack.sandbox_url}/_sandbox/calcom/bookings",
                                     json=body)  # fmt: skip
        data = resp.json().get("data") if resp.status_code == 201 else None
        self.out.steps.append({"step": "web booking", "action": None,
                               "port": "success" if data else str(resp.status_code)})  # fmt: skip
        if not isinstance(data, dict) or not data.get("uid"):
            raise DemoFailure(f"the web booking failed: {resp.status_code} {resp.text[:300]}")
        self.say("web", f"Grace Hopper booked {clock(start)} on the Cal.com booking page "
                        "(sandbox web path: only the webhook tells calflow)")  # fmt: skip
        return str(data["uid"])
