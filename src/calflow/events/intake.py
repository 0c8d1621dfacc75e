"""Doors into the inbox for calflow's own paths: booking actions and replays.

Both normalize with the same code as the webhook receiver and publish through
:meth:`calflow.events.inbox.Inbox.publish`, so a booking made by an action, the
provider's webhook for it, and a replay of it are one event.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from calflow.errors import ValidationError
from calflow.events.inbox import Inbox
from calflow.events.normalize import from_action, normalize
from calflow.flowapp.context import BookingChange, BookingSink

if TYPE_CHECKING:
    from calflow.integrations import IntegrationStore
    from calflow.replay.targets import Delivery, Intake, IntakeResult

log = logging.getLogger("calflow.events")


def inbox_for(store: IntegrationStore) -> Inbox:
    """The inbox of the store's workspace, on the store's database."""
    return Inbox(store.engine, store.workspace_id)


def make_replay_intake(store: IntegrationStore) -> Intake:
    """The intake ``calflow replay --into calflow`` publishes through (source ``replay``;
    marked ``history`` unless the replay runs workflows, so an old change starts none)."""
    inbox = inbox_for(store)

    async def intake(delivery: Delivery) -> IntakeResult:
        try:
            body = json.loads(delivery.body)
        except ValueError as exc:  # the replay built it: a bug, not input
            raise ValidationError(f"replayed item {delivery.item_id} is not JSON") from exc
        event = normalize(
            delivery.provider, body, source="replay", integration_id=delivery.integration_id
        )
        if not delivery.run_workflows:
            event = replace(event, history=True)
        published = await asyncio.to_thread(inbox.publish, event, delivery.item_id)
        return "duplicate" if published.duplicate else "accepted"

    return intake


def make_action_sink(store: IntegrationStore) -> BookingSink:
    """The sink the runner gives booking actions: their changes publish as source ``action``.

    The booking was made whatever happens here, so a failure to publish is logged
    loudly, never turned into a failed action (the provider's webhook or a replay
    still brings the event in).
    """
    inbox = inbox_for(store)

    async def sink(change: BookingChange) -> None:
        try:
            event = from_action(change)
            await asyncio.to_thread(inbox.publish, event, None)
        except Exception as exc:
            log.error(
                "could not publish the %s %s change of %s: %s",
                change.provider,
                change.kind,
                change.booking.get("uid") or change.booking.get("id"),
                exc,
            )

    return sink
