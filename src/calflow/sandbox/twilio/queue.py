"""Twilio's outbound queue: each sender sends so many segments per second, in turn.

Twilio accepts a message at once (201, ``queued``; ``accepted`` through a Messaging
Service) and sends it when the sender's throughput allows: a US long code sends one
segment per second, so under load a message waits ``queued``, with no ``date_sent``,
for seconds to hours. The sandbox models that per sender (the ``From`` number, or the
Messaging Service when there is no ``From``), first in, first out:

* a message's turn comes when it was created or when the sender's previous message
  finished, whichever is later; it is ``sending`` while its segments go out
  (``num_segments / mps`` seconds), then ``sent`` (``date_sent`` is that moment), and
  ``delivered`` :data:`DELIVERY_S` later (the carrier's receipt);
* a message sent through a Messaging Service goes from ``accepted`` to ``queued`` as it
  is created (the service picked its sender);
* with ``mps`` 0 there is no queue: the message is sent and delivered the moment it is
  created.

Every change is dated by the sandbox clock at which it happens, not the time it was
noticed: moving the clock forward (``POST /_sandbox/clock``) drains the queue with the
same ``date_sent`` values the real pace would have given.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from calflow.sandbox.twilio.state import Message

DELIVERY_S = 1.0
"""Seconds between ``sent`` and ``delivered`` when the sender has a throughput."""


@dataclass(frozen=True)
class Change:
    """One status a message took, and when (the sandbox clock)."""

    message: Message
    status: str
    at: datetime


@dataclass(order=True)
class _Due:
    at: datetime
    seq: int
    status: str = field(compare=False)
    message: Message = field(compare=False)


def sender_key(message: Message) -> str:
    """The queue a message waits in: its From number, else its Messaging Service."""
    return message.from_ or message.messaging_service_sid or ""


class SendQueue:
    """When each message takes each status, and which changes are due by a given time.

    Args:
        mps: segments per second each sender sends; 0 for no limit.
    """

    def __init__(self, mps: float = 0.0) -> None:
        self.mps = mps
        self._free_at: dict[str, datetime] = {}
        self._due: list[_Due] = []
        self._seq = itertools.count()

    def next_due(self) -> datetime | None:
        """When the next status change is due (``None``: nothing is queued)."""
        return self._due[0].at if self._due else None

    def admit(self, message: Message, now: datetime) -> list[Change]:
        """Plan the message's progress from ``now``; returns the changes already due."""
        plan: list[tuple[str, datetime]] = []
        if message.status == "accepted":
            plan.append(("queued", now))
        if self.mps <= 0:
            plan += [("sending", now), ("sent", now), ("delivered", now)]
        else:
            key = sender_key(message)
            turn = max(now, self._free_at.get(key, now))
            sent = turn + timedelta(seconds=message.num_segments / self.mps)
            self._free_at[key] = sent
            plan += [("sending", turn), ("sent", sent),
                     ("delivered", sent + timedelta(seconds=DELIVERY_S))]  # fmt: skip
        for status, at in plan:
            heapq.heappush(self._due, _Due(at, next(self._seq), status, message))
        return self.advance(now)

    def advance(self, now: datetime) -> list[Change]:
        """Apply every change due by ``now``, oldest first, and return them."""
        done: list[Change] = []
        while self._due and self._due[0].at <= now:
            item = heapq.heappop(self._due)
            message = item.message
            message.status, message.date_updated = item.status, item.at
            if item.status == "sent":
                message.date_sent = item.at
            done.append(Change(message, item.status, item.at))
        return done
