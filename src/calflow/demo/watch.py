"""The demo's eyes: polls the inbox, the runs and the sandbox, and narrates each change."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from calflow.events.inbox import Inbox
from calflow.workflows.runs import FINAL, RunStore

from .report import Timeline, clock
from .stack import Stack

T = TypeVar("T")
POLL_S = 0.2


def _in(iso: str) -> str:
    """``in 14 s``, ``in 31 min``, ``in 3 h`` (from now to ``iso``)."""
    left = (datetime.fromisoformat(iso) - datetime.now(UTC)).total_seconds()
    if left < 0:
        return "now"
    if left < 120:
        return f"in {left:.0f} s"
    return f"in {left / 60:.0f} min" if left < 7200 else f"in {left / 3600:.0f} h"


def scheduled_due(run: dict[str, Any]) -> str | None:
    """The time a run waits for, or None.

    A run woken to look again (its booking moved or ended) is due at the moment of the
    wake, its ``updated_at``: that is not a time it waits for, so it is not told."""
    due: str | None = run["next_due_at"]
    return None if due == run["updated_at"] else due


@dataclass
class Watcher:
    """What the demo has seen so far; :meth:`run` keeps it current until cancelled."""

    stack: Stack
    say: Timeline
    labels: dict[str, str] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    due: dict[str, list[str]] = field(default_factory=dict)
    sms: list[dict[str, Any]] = field(default_factory=list)
    emails: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = asyncio.Lock()
        self.muted = False
        store = self.stack.store
        self.inbox = Inbox(store.engine, store.workspace_id)
        self.run_store = RunStore(store.engine, store.workspace_id)

    def label(self, uid: str | None) -> str:
        if not uid:
            return "-"
        return self.labels.get(uid) or f"booking {uid[:8]}…"

    async def run(self) -> None:
        """Poll until cancelled; a failed poll is reported once and tried again."""
        failing = False
        while True:
            try:
                await self.poll()
                failing = False
            except Exception as exc:
                if not failing:
                    self.say("note", f"could not read the demo's state ({exc}); retrying")
                failing = True
            await asyncio.sleep(POLL_S)

    async def poll(self) -> None:
        async with self._lock:
            await self._poll_events()
            await self._poll_runs()
            self._poll_sandbox()

    async def prime(self) -> None:
        """Take in what an earlier demo left in this home, without narrating it."""
        self.muted = True
        try:
            await self.poll()
        finally:
            self.muted = False

    def _say(self, kind: str, text: str) -> None:
        if not self.muted:
            self.say(kind, text)

    async def until(self, check: Callable[[], T | None], wait_s: float, what: str) -> T:
        """``check()``'s first truthy value; ``TimeoutError`` naming ``what`` after ``wait_s``."""
        deadline = time.monotonic() + wait_s
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not happen within {wait_s:.0f} s")
            await asyncio.sleep(0.05)

    # --- the inbox -------------------------------------------------------------------
    async def _poll_events(self) -> None:
        rows = await asyncio.to_thread(self.inbox.list, limit=500)
        for row in reversed(rows):
            known = self.events.get(row["id"])
            if known is not None and known["deliveries"] == row["deliveries"]:
                continue
            full = await asyncio.to_thread(self.inbox.get, row["id"])
            seen = len(known["sources"]) if known else 0
            sources = [d["source"] for d in full["deliveries"]]
            self.events[row["id"]] = {**row, "sources": sources}
            for n, source in enumerate(sources[seen:], start=seen):
                self._say_delivery(row, source, n)

    def _say_delivery(self, row: dict[str, Any], source: str, n: int) -> None:
        who = self.label(row["booking_uid"])
        if n == 0:
            start = (row.get("event") or {}).get("start")
            when = f", starts {clock(start)}" if start else ""
            stale = " (stale: starts nothing)" if row.get("ordering") == "stale" else ""
            self._say("event", f"{row['kind']} {who}{when} ← {source}: {row['id']}{stale}")
        else:
            self._say(
                "dup",
                f"{row['kind']} {who} ← {source}: the same change, recorded as delivery "
                f"{n + 1} of {row['id']} and not processed again",
            )

    # --- runs -----------------------------------------------------------------------
    async def _poll_runs(self) -> None:
        rows = await asyncio.to_thread(self.run_store.list, limit=500)
        for row in reversed(rows):
            before = self.runs.get(row["id"])
            self.runs[row["id"]] = row
            due = scheduled_due(row)
            history = self.due.setdefault(row["id"], [])
            head = f"{row['workflow']} {self.label(row['booking_uid'])}"
            if before is None and row["status"] not in FINAL:
                self._say("run", f"{head}: started")
            if due and row["status"] == "waiting" and (not history or history[-1] != due):
                step = row["current_step"]
                if history:
                    self._say(
                        "moved",
                        f"{head}: {step} moved from {clock(history[-1])} to {clock(due)} "
                        f"({_in(due)})",
                    )
                else:
                    self._say("run", f"{head}: waiting, {step} due {clock(due)} "
                                    f"({_in(due)})")  # fmt: skip
                history.append(due)
            if row["status"] in FINAL and (before is None or before["status"] not in FINAL):
                await self._say_final(head, row)

    async def _say_final(self, head: str, row: dict[str, Any]) -> None:
        if row["status"] == "cancelled":
            self._say("cancel", f"{head}: cancelled ({row['cancel_reason']})")
            return
        full = await asyncio.to_thread(self.run_store.get, row["id"])
        ports = ", ".join(f"{s['step']} → {s['port'] or s['status']}" for s in full["steps"])
        kind = "done" if row["status"] == "succeeded" else "fail"
        error = f"; {row['error']}" if row.get("error") else ""
        self._say(kind, f"{head}: {row['status']} ({ports}{error})")

    # --- the sandbox ----------------------------------------------------------------
    def _poll_sandbox(self) -> None:
        messages = list(self.stack.sandbox.twilio.state.messages.values())
        for msg in messages[len(self.sms) :]:
            self.sms.append({"sid": msg.sid, "to": msg.to, "from": msg.from_, "body": msg.body,
                             "at": msg.date_created.isoformat()})  # fmt: skip
            self._say("sms", f"Twilio sandbox got an SMS to {msg.to}: “{msg.body}”")
        mails = list(self.stack.sandbox.smtp.messages)
        for mail in mails[len(self.emails) :]:
            self.emails.append({"to": mail.rcpt_tos, "from": mail.mail_from,
                                "subject": mail.subject, "text": mail.text,
                                "at": mail.received_at})  # fmt: skip
            self._say("email", f"SMTP sink got an email to {', '.join(mail.rcpt_tos)}: "
                              f"“{mail.subject}”")  # fmt: skip
