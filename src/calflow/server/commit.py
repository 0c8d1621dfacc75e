"""Group commit: deliveries that arrive together are stored in one transaction.

Every request still waits for its own event to be committed before it is answered;
what it shares is the transaction (and, on SQLite, the single write lock and the WAL
sync). One writer thread does all the writing, so concurrent requests queue here
instead of sleeping in SQLite's busy handler. If a batch fails, its deliveries are
retried one by one, so one bad delivery cannot fail the others.
"""

from __future__ import annotations

import asyncio
import logging

from calflow.events.inbox import Inbox, Published
from calflow.events.model import BookingEvent

log = logging.getLogger("calflow.server.commit")
_Item = tuple[BookingEvent, str | None, "asyncio.Future[Published]"]


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
            results = await asyncio.to_thread(
                self.inbox.publish_many, [(event, ref) for event, ref, _ in batch]
            )
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
            if not future.done():
                future.set_result(result)
