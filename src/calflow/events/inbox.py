"""The inbox: the one door every booking event goes through, once.

:meth:`Inbox.publish` stores a :class:`BookingEvent` under its dedupe key and records
the delivery, in one transaction. The first arrival creates the event, with
``dispatched_at`` null: that is the hand-off to processing (the workflow engine takes
undispatched events), so an event acknowledged to its sender survives a crash right
after. A later arrival of the same change (a webhook retry, the provider's webhook
for a booking calflow itself made, a replay) is recorded as a duplicate delivery of
the same event and fills in what the stored event lacked (attendee phones, titles…); it is never
processed twice. The event counts every delivery (``deliveries``); the first
``KEPT_DELIVERIES`` of them are also kept as rows (source, reference, time), so a flood
of copies of one change grows a counter, not the database.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from calflow.db.engine import write_transaction
from calflow.db.models import (
    DEFAULT_WORKSPACE,
    EventDeliveryRow,
    EventRow,
    new_event_id,
)
from calflow.db.types import utcnow
from calflow.errors import NotFoundError
from calflow.events import statements as sql
from calflow.events.model import BookingEvent
from calflow.events.ordering import (
    ENDED,
    RESCHEDULED_AWAY,
    SEAT_PHASES,
    BookingState,
    Verdict,
    ended_by_reschedule,
    judge,
    seat_uid,
)

KEPT_DELIVERIES = 10
"""Deliveries of one event kept as rows; later ones are only counted on the event."""


@dataclass(frozen=True)
class Published:
    """What :meth:`Inbox.publish` did: the event's id and whether it already existed."""

    event_id: str
    dedupe_key: str
    duplicate: bool
    stale: bool = False
    """The booking had already moved past this change (see ``calflow.events.ordering``)."""


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == {} or value == []


def _fill(stored: Mapping[str, Any], incoming: Mapping[str, Any]) -> dict[str, Any]:
    """``stored`` with its empty fields taken from ``incoming`` (one level of dicts deep)."""
    out = dict(stored)
    for key, value in incoming.items():
        if _empty(value):
            continue
        have = out.get(key)
        if _empty(have):
            out[key] = value
        elif isinstance(have, Mapping) and isinstance(value, Mapping):
            out[key] = {**have, **{k: v for k, v in value.items() if _empty(have.get(k))}}
    return out


def _fill_missing(stored: Mapping[str, Any], incoming: BookingEvent) -> dict[str, Any] | None:
    """``stored`` completed from a later delivery of the same change (None: nothing new).

    The first arrival's values stay; what it lacked (an attendee's phone or language, the
    event type's title, the meeting URL…) is filled in from whichever source has it, so
    the stored event does not depend on which channel happened to arrive first.
    """
    fresh = incoming.to_dict(raw=False)
    skip = {"source", "received_at", "occurred_at", "attendees", "integration_id", "history"}
    merged = _fill(stored, {k: v for k, v in fresh.items() if k not in skip})
    by_email = {str(a.get("email") or "").lower(): a for a in fresh["attendees"] if a.get("email")}
    attendees = [dict(a) for a in stored.get("attendees") or []]
    for n, a in enumerate(attendees):
        other = by_email.get(str(a.get("email") or "").lower())
        if other is not None:
            attendees[n] = _fill(a, other)
    if not attendees and fresh["attendees"]:
        attendees = list(fresh["attendees"])
    merged["attendees"] = attendees
    return merged if merged != dict(stored) else None


class Inbox:
    """Booking events of one workspace."""

    def __init__(self, engine: Engine, workspace_id: str = DEFAULT_WORKSPACE) -> None:
        self.engine = engine
        self.workspace_id = workspace_id

    def publish(self, event: BookingEvent, reference: str | None = None) -> Published:
        """Store ``event`` once under its dedupe key and record this delivery."""
        return self.publish_many([(event, reference)])[0]

    def publish_many(
        self, items: Sequence[tuple[BookingEvent, str | None]]
    ) -> builtins.list[Published]:
        """:meth:`publish` for several deliveries in one transaction (a group commit).

        On SQLite the transaction takes the write lock at once (``BEGIN IMMEDIATE``):
        no reader-turned-writer waits in the busy handler. If it fails, nothing of it
        is stored.
        """
        with write_transaction(self.engine) as conn:
            writer = sql.Writer(conn)
            published = [self._publish(writer, event, reference) for event, reference in items]
        from calflow.metrics import EVENTS  # here: listing events never loads the client

        for (event, _), done in zip(items, published, strict=True):
            if not done.duplicate:  # counted once committed
                EVENTS.labels(event.kind, event.source).inc()
        return published

    def _publish(self, w: sql.Writer, event: BookingEvent, reference: str | None) -> Published:
        key = event.dedupe_key()
        created = w.insert_event(
            {
                "id": new_event_id(),
                "workspace_id": self.workspace_id,
                "dedupe_key": key,
                "provider": event.provider,
                "kind": event.kind,
                "original_type": event.original_type[:80],
                "booking_uid": event.booking_uid[:200],
                "integration_id": event.integration_id,
                "source": event.source,
                "start": event.start,
                "occurred_at": event.occurred_at,
                "received_at": event.received_at,
                "data": event.to_dict(raw=False),
                "raw": dict(event.raw),
            }
        )
        duplicate = created is None
        stale = False
        seen = 0
        if created is None:
            event_id, data, seen = w.select_event(self.workspace_id, key)
            merged = _fill_missing(data, event)
            if merged is None:
                w.execute(sql.COUNT_DUPLICATE, {"id": event_id})
            else:
                w.execute(sql.COUNT_DUPLICATE_AND_FILL, {"id": event_id, "data": merged})
        else:
            event_id = created
            verdict = self._order(w, event, event_id)
            stale = not verdict.applies
            if stale:
                w.execute(sql.MARK_STALE, {"id": event_id, "reason": (verdict.reason or "")[:300]})
        if seen >= KEPT_DELIVERIES:  # a flood of copies: counted on the event, not stored
            return Published(event_id, key, duplicate, stale)
        w.execute(
            sql.INSERT_DELIVERY,
            {
                "event_id": event_id,
                "source": event.source,
                "integration_id": event.integration_id,
                "reference": reference[:200] if reference else None,
                "duplicate": int(duplicate),
                "received_at": utcnow(),
            },
        )
        return Published(event_id, key, duplicate, stale)

    def _order(self, w: sql.Writer, event: BookingEvent, event_id: str) -> Verdict:
        """Judge ``event`` against its booking's state and store the state it leads to."""
        if not event.booking_uid:
            return Verdict(True, None, None)
        w.lock_booking(f"{self.workspace_id}\x1f{event.provider}\x1f{event.booking_uid}")
        if event.seat:
            return self._order_seat(w, event, event.seat, event_id)
        verdict = judge(self._state(w, event.provider, event.booking_uid), event, event_id)
        if verdict.state is not None:
            self._save_state(w, event.provider, event.booking_uid, verdict.state)
        away = ended_by_reschedule(event, event_id) if verdict.applies else None
        if away is not None and event.previous_uid:
            old = self._state(w, event.provider, event.previous_uid)
            if old is None or old.phase < away.phase:
                self._save_state(w, event.provider, event.previous_uid, away)
        return verdict

    def _order_seat(self, w: sql.Writer, event: BookingEvent, seat: str, event_id: str) -> Verdict:
        """Rule 5: a seat's change against the seat's state and its booking's end.

        A seated reschedule moves the whole booking when the delivery lists every seat
        calflow knows on the old booking (the host moved it); otherwise the seat alone
        moves and the seats left behind stay where they were.
        """
        uid, provider = event.booking_uid, event.provider
        booking = self._state(w, provider, uid)
        ended = booking is not None and booking.phase == ENDED and booking.kind != RESCHEDULED_AWAY
        if ended and booking is not None and booking.occurred_at >= event.occurred_at:
            return Verdict(False, f"the booking was already {booking.kind}", None)
        key = seat_uid(uid, seat)
        verdict = judge(self._state(w, provider, key), event, event_id, SEAT_PHASES)
        if verdict.state is not None:
            self._save_state(w, provider, key, verdict.state)
        if not verdict.applies or verdict.state is None or verdict.state.phase == ENDED:
            return verdict
        old_uid = event.previous_uid or uid
        moved = event.kind in ("rescheduled", "attendee_rescheduled")
        if moved and self._everyone_moved(w, event, old_uid, seat):
            whole = judge(booking, event, event_id)
            if whole.state is not None:
                self._save_state(w, provider, uid, whole.state)
            away = ended_by_reschedule(event, event_id)
            if away is not None:
                self._save_state(w, provider, old_uid, away)
        elif moved and old_uid != uid:
            away = BookingState(RESCHEDULED_AWAY, ENDED, event.occurred_at, event_id)
            self._save_state(w, provider, seat_uid(old_uid, seat), away)
        if booking is None or ended:
            self._save_state(w, provider, uid, replace(verdict.state, kind="created"))
        return verdict

    def _everyone_moved(self, w: sql.Writer, event: BookingEvent, old_uid: str, seat: str) -> bool:
        """Whether the delivery names every other seat still on the old booking."""
        prefix = seat_uid(old_uid, "").replace("\\", "\\\\").replace("%", "\\%")
        prefix = prefix.replace("_", "\\_")
        params = {"workspace_id": self.workspace_id, "provider": event.provider,
                  "prefix": prefix[:199] + "%"}  # fmt: skip
        seats = {k.rsplit("#seat:", 1)[-1] for k in w.active_seats(params)} - {seat}
        return bool(seats) and seats <= set(event.party)

    def _state(self, w: sql.Writer, provider: str, uid: str) -> BookingState | None:
        params = {"workspace_id": self.workspace_id, "provider": provider, "booking_uid": uid[:200]}
        row = w.select_state(params)
        return None if row is None else BookingState(*row)

    def _save_state(self, w: sql.Writer, provider: str, uid: str, state: BookingState) -> None:
        w.execute(
            sql.SAVE_STATE,
            {
                "workspace_id": self.workspace_id,
                "provider": provider,
                "booking_uid": uid[:200],
                "kind": state.kind,
                "phase": state.phase,
                "occurred_at": state.occurred_at,
                "event_id": state.event_id,
                "start": state.start,
                "end": state.end,
                "updated_at": utcnow(),
            },
        )

    def booking_state(self, provider: str, uid: str) -> BookingState | None:
        """Where a booking stands: the last schedule change that applied to it."""
        with self.engine.connect() as conn:
            return self._state(sql.Writer(conn), provider, uid)

    def get(self, event_id: str) -> dict[str, Any]:
        """One event with its delivery history (``NotFoundError`` if unknown)."""
        with Session(self.engine) as session:
            row = session.scalars(
                select(EventRow).where(
                    EventRow.workspace_id == self.workspace_id, EventRow.id == event_id
                )
            ).first()
            if row is None:
                raise NotFoundError(f"no event {event_id!r}")
            deliveries = session.scalars(
                select(EventDeliveryRow)
                .where(EventDeliveryRow.event_id == event_id)
                .order_by(EventDeliveryRow.id)
            ).all()
            out = _public(row)
            out["raw"] = row.raw
            out["deliveries"] = [
                {
                    "source": d.source,
                    "integration_id": d.integration_id,
                    "reference": d.reference,
                    "duplicate": bool(d.duplicate),
                    "received_at": d.received_at.isoformat(),
                }
                for d in deliveries
            ]
            return out

    def list(
        self,
        *,
        kind: str | None = None,
        provider: str | None = None,
        since: datetime | None = None,
        booking_uid: str | None = None,
        limit: int = 100,
        until: datetime | None = None,
        integration_id: str | None = None,
        before: tuple[datetime, str] | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """Events, newest first, filtered; ``before`` (received_at, id) pages on from the
        last event of a previous page (keyset pagination: stable while events arrive)."""
        query = select(EventRow).where(EventRow.workspace_id == self.workspace_id)
        if kind:
            query = query.where(EventRow.kind == kind)
        if provider:
            query = query.where(EventRow.provider == provider)
        if since:
            query = query.where(EventRow.received_at >= since)
        if until:
            query = query.where(EventRow.received_at < until)
        if booking_uid:
            query = query.where(EventRow.booking_uid == booking_uid)
        if integration_id:
            query = query.where(EventRow.integration_id == integration_id)
        if before is not None:
            at, last_id = before
            query = query.where(
                (EventRow.received_at < at)
                | ((EventRow.received_at == at) & (EventRow.id < last_id))
            )
        query = query.order_by(EventRow.received_at.desc(), EventRow.id.desc()).limit(limit)
        with Session(self.engine) as session:
            return [_public(r) for r in session.scalars(query).all()]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(EventRow)
                    .where(EventRow.workspace_id == self.workspace_id)
                ).scalar_one()
            )


def _public(row: EventRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "dedupe_key": row.dedupe_key,
        "provider": row.provider,
        "kind": row.kind,
        "original_type": row.original_type,
        "booking_uid": row.booking_uid,
        "source": row.source,
        "integration_id": row.integration_id,
        "received_at": row.received_at.isoformat(),
        "deliveries": row.deliveries,
        "duplicates": row.deliveries - 1,
        "dispatched": row.dispatched_at is not None,
        "ordering": row.ordering,
        "stale_reason": row.stale_reason,
        "event": row.data,
    }
