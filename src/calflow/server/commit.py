"""Group commit: deliveries that arrive together are stored in one transaction.

Every request still waits for its own event to be committed before it is answered;
what it shares is the transaction (and, on SQLite, the single write lock and the WAL
sync). One writer thread does all the writing, so concurrent requests queue here
instead of sleeping in SQLite's busy handler. If a batch fails, its deliveries are
retried one by one, so one bad delivery cannot fail the others.

Just before a batch is written, the integrations its deliveries came through are looked
up (one indexed read per batch): the receiver caches integrations for a moment, and a
delivery through one deleted meanwhile fails with :class:`IntegrationGone` instead of
being stored under an integration that no longer exists.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from sqlalchemy import select

from calflow.db.engine import urgent_writes
from calflow.db.models import IntegrationRow
from calflow.events.inbox import Inbox, Published
from calflow.events.model import BookingEvent

log = logging.getLogger("calflow.server.commit")
_Item = tuple[BookingEvent, str | None, "asyncio.Future[Published]"]


class IntegrationGone(Exception):
    """The delivery's integration was deleted after the receiver looked it up."""


class GroupCommit:
    """Publishes through ``inbox`` with at most one transaction in flight."""

    def __init__(self, inbox: Inbox, max_batch: int = 256) -> None:
        self.inbox = inbox
        self.max_batch = max_batch
        self._pending: list[_Item] = []
        self._task: asyncio.Task[None] | None = None

    async def publish(self, event: BookingEvent, reference: str | None) -> Published:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Published] = loop.create_future()
        self._pending.append((event, reference, future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._writer())
        return await future

    async def _writer(self) -> None:
        """Write until nothing is pending, then end (the next publish starts a new one)."""
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            await self._write(batch)

    async def _write(self, batch: list[_Item]) -> None:
        try:
            results = await asyncio.to_thread(self._store, [(e, ref) for e, ref, _ in batch])
        except Exception as exc:  # retry alone, so one bad delivery fails alone
            if len(batch) > 1:
                log.warning("a batch of %d failed (%s); storing one by one", len(batch), exc)
                for item in batch:
                    await self._write([item])
                return
            future = batch[0][2]
            if not future.done():
                future.set_exception(exc)
            return
        for (_, _, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, IntegrationGone):
                future.set_exception(result)
            else:
                future.set_result(result)

    def _store(
        self, items: Sequence[tuple[BookingEvent, str | None]]
    ) -> list[Published | IntegrationGone]:
        """Publish the items whose integration still exists; the others are gone (ahead
        of the engine's writes: a provider waits on these)."""
        with urgent_writes():
            return self._store_now(items)

    def _store_now(
        self, items: Sequence[tuple[BookingEvent, str | None]]
    ) -> list[Published | IntegrationGone]:
        wanted = {e.integration_id for e, _ in items if e.integration_id}
        live = self._existing(wanted) if wanted else set()
        keep = [(e, ref) for e, ref in items if not e.integration_id or e.integration_id in live]
        stored = iter(self.inbox.publish_many(keep) if keep else [])
        return [
            next(stored) if not e.integration_id or e.integration_id in live else IntegrationGone()
            for e, _ in items
        ]

    def _existing(self, ids: set[str]) -> set[str]:
        with self.inbox.engine.connect() as conn:
            query = select(IntegrationRow.id).where(IntegrationRow.id.in_(sorted(ids)))
            return {str(found) for found in conn.execute(query).scalars()}
