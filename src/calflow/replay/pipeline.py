"""The replay pipeline: one producer pages the source, N workers send, one recorder stores.

    source pages ─▶ producer ─▶ bounded queue ─▶ N workers ─▶ target
                       │ (skips)                    │
                       └──────────▶ recorder ◀──────┘ outcomes
                                      │ batches: item outcomes + checkpoint, one transaction

- Memory stays flat: pages are read one at a time and the work queue is bounded, so
  the producer waits for the workers; nothing holds the whole history.
- Every fetched item ends as sent, skipped (with reason) or failed (with reason);
  the run's counts add up to what it fetched.
- The checkpoint is the source token of the first page whose items are not all
  settled; it is stored in the same transaction as the outcomes that settle them. A
  crash re-reads at most the pages in flight, and items already recorded are not sent
  again. Failed items are retried on resume (fetched fresh from the provider).
- A target that stays unreachable stops the job (status ``failed``, resumable) instead
  of failing the rest of the history one item at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from calflow.errors import CalflowError
from calflow.metrics import REPLAY_ITEMS
from calflow.replay.adapter import ProviderAdapter
from calflow.replay.jobs import Job, JobStore
from calflow.replay.model import (
    DRY_RUN_REASON,
    FAILED,
    SKIPPED,
    Counts,
    Outcome,
    ReplayItem,
    ReplayOptions,
)
from calflow.replay.targets import UNREACHABLE, Target

FLUSH_EVERY = 500
FLUSH_INTERVAL_S = 0.25
UNREACHABLE_STOP_AFTER = 10
"""Consecutive items that found the target unreachable before the job stops."""
WOULD_SEND_LIST_MAX = 1000


@dataclass(frozen=True)
class Progress:
    """A snapshot for progress displays."""

    job: str
    fetched: int
    sent: int
    skipped: int
    failed: int
    total: int | None
    elapsed_s: float


ProgressFn = Callable[[Progress], None]


class _Pages:
    """Which pages are settled; the checkpoint is the token of the first one that is not."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self.exhausted = False
        self._pages: dict[int, list[Any]] = {}  # idx -> [open items, next token, closed]
        self._low = 0

    def open(self, idx: int, next_token: str | None) -> None:
        self._pages[idx] = [0, next_token, False]

    def add(self, idx: int) -> None:
        self._pages[idx][0] += 1

    def close(self, idx: int) -> None:
        self._pages[idx][2] = True
        self._advance()

    def settle(self, idx: int) -> None:
        if idx in self._pages:
            self._pages[idx][0] -= 1
            self._advance()

    def _advance(self) -> None:
        while (page := self._pages.get(self._low)) is not None and page[2] and page[0] == 0:
            del self._pages[self._low]
            self._low += 1
            if page[1] is None:
                self.exhausted = True
            else:
                self.token = page[1]


class _Latencies:
    """A fixed-size random sample of send latencies (flat memory) for percentiles."""

    def __init__(self, size: int = 5000) -> None:
        self._size = size
        self._seen = 0
        self._sample: list[float] = []

    def add(self, value: float) -> None:
        self._seen += 1
        if len(self._sample) < self._size:
            self._sample.append(value)
        else:
            slot = random.randrange(self._seen)
            if slot < self._size:
                self._sample[slot] = value

    def percentile(self, p: float) -> float:
        if not self._sample:
            return 0.0
        ordered = sorted(self._sample)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


@dataclass
class RunState:
    job: Job
    adapter: ProviderAdapter
    target: Target | None
    options: ReplayOptions
    secret: str | None
    jobs: JobStore | None
    resume: bool
    progress: ProgressFn | None
    kinds: frozenset[str]
    counts: Counts = field(default_factory=Counts)
    stop_reason: str | None = None
    stop_status: str = "failed"
    would_send: list[dict[str, Any]] = field(default_factory=list)
    total: int | None = None
    fetch_s: float = 0.0
    latencies: _Latencies = field(default_factory=_Latencies)
    pending: list[Outcome] = field(default_factory=list)
    """Outcomes counted but not yet stored (the recorder's current batch)."""

    def stop(self, reason: str, status: str = "failed") -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            self.stop_status = status


def _skip(
    obj_id: str,
    kind: str,
    reason: str,
    page: int,
    *,
    record: bool = True,
    item_id: str = "",
    final: bool = True,
) -> Outcome:
    return Outcome(
        item_id=item_id or f"{kind}:{obj_id}",
        object_id=obj_id,
        kind=kind,
        status=SKIPPED,
        reason=reason,
        page=page,
        record=record,
        final=final,
    )


async def run_pipeline(run: RunState, started: float) -> None:
    concurrency = max(1, run.options.concurrency)
    work: asyncio.Queue[ReplayItem | None] = asyncio.Queue(maxsize=concurrency * 4)
    results: asyncio.Queue[Outcome | None] = asyncio.Queue()
    pages = _Pages(run.job.checkpoint)
    if run.resume and run.job.exhausted:
        pages.exhausted = True
    unreachable = [0]
    producer = asyncio.create_task(_produce(run, work, results, pages, concurrency))
    workers = [
        asyncio.create_task(_work(run, work, results, unreachable)) for _ in range(concurrency)
    ]
    recorder = asyncio.create_task(_record(run, results, pages, started))
    ticker = asyncio.create_task(_tick(results))
    tasks = [producer, *workers, recorder, ticker]
    try:
        await producer
        await asyncio.gather(*workers)
        await results.put(None)
        await recorder
        ticker.cancel()
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        while not results.empty():  # finished sends the recorder had not taken yet
            outcome = results.get_nowait()
            if outcome is not None and outcome is not _TICK:
                _take(run, pages, outcome)
        _final_flush(run, pages)
        raise


async def _produce(
    run: RunState,
    work: asyncio.Queue[ReplayItem | None],
    results: asyncio.Queue[Outcome | None],
    pages: _Pages,
    concurrency: int,
) -> None:
    try:
        if run.resume and run.jobs is not None:
            await _retry_failed(run, work, results)
        if not pages.exhausted:
            await _read_history(run, work, results, pages)
    except CalflowError as exc:
        run.stop(f"reading {run.adapter.label} history failed: {exc.message}")
    # Not in ``finally``: once cancelled, the workers are gone and a full queue would block.
    for _ in range(concurrency):
        await work.put(None)


async def _retry_failed(
    run: RunState, work: asyncio.Queue[ReplayItem | None], results: asyncio.Queue[Outcome | None]
) -> None:
    assert run.jobs is not None
    failed = await asyncio.to_thread(lambda: list(run.jobs.failed_items(run.job.id)))  # type: ignore[union-attr]
    for item_id, object_id, kind in failed:
        if run.stop_reason is not None:
            return
        run.counts.fetched += 1
        obj = await run.adapter.fetch_one(object_id)
        if obj is None:
            await results.put(
                _skip(
                    object_id,
                    kind,
                    "gone: the object no longer exists at the provider",
                    -1,
                    item_id=item_id,
                )
            )
            continue
        new_kind, reason = run.adapter.classify(obj)
        if new_kind is None or (run.kinds and new_kind not in run.kinds):
            await results.put(
                _skip(object_id, kind, reason or "filtered: kind not selected", -1, item_id=item_id)
            )
            continue
        item = run.adapter.item(obj, new_kind, page=-1)
        if item.id != item_id:  # the object changed since: the old change is superseded
            await results.put(
                _skip(
                    object_id,
                    kind,
                    f"superseded: the object is now {new_kind}",
                    -1,
                    item_id=item_id,
                )
            )
        await work.put(item)


async def _read_history(
    run: RunState,
    work: asyncio.Queue[ReplayItem | None],
    results: asyncio.Queue[Outcome | None],
    pages: _Pages,
) -> None:
    opts, adapter = run.options, run.adapter
    limit = opts.limit
    idx = 0
    source = adapter.pages(pages.token)
    try:
        while limit is None or run.counts.fetched < limit:
            if run.stop_reason is not None:
                return
            t0 = time.perf_counter()
            page = await anext(source, None)
            run.fetch_s += time.perf_counter() - t0
            if page is None:
                return
            if page.total is not None:
                run.total = page.total
            pages.open(idx, page.next_token)
            done_ids: set[str] = set()
            if run.resume and run.jobs is not None and page.items:
                ids = [adapter.item_id(o, k) for o in page.items if (k := adapter.classify(o)[0])]
                done_ids = await asyncio.to_thread(run.jobs.recorded, run.job.id, ids)
            for obj in page.items:
                if run.stop_reason is not None or (
                    limit is not None and run.counts.fetched >= limit
                ):
                    # not settled: the page stays open, so the checkpoint does not pass it
                    return
                run.counts.fetched += 1
                pages.add(idx)
                outcome_or_item = _prepare(run, obj, idx, done_ids)
                if isinstance(outcome_or_item, Outcome):
                    await results.put(outcome_or_item)
                else:
                    await work.put(outcome_or_item)
            pages.close(idx)
            idx += 1
    finally:
        await source.aclose()


def _prepare(
    run: RunState, obj: Mapping[str, Any], idx: int, done: set[str]
) -> Outcome | ReplayItem:
    adapter, opts = run.adapter, run.options
    oid = adapter.object_id(obj)
    kind, reason = adapter.classify(obj)
    if kind is None:
        return _skip(oid, "-", reason, idx)
    item_id = adapter.item_id(obj, kind)
    if run.kinds and kind not in run.kinds:
        return _skip(oid, kind, f"filtered: kind {kind} not selected", idx, item_id=item_id)
    start = adapter.start(obj)
    if opts.since is not None and (start is None or start < opts.since):
        return _skip(oid, kind, "filtered: starts before --since", idx, item_id=item_id)
    if opts.until is not None and (start is None or start >= opts.until):
        return _skip(oid, kind, "filtered: starts at or after --until", idx, item_id=item_id)
    if item_id in done:
        return _skip(
            oid,
            kind,
            "already done: recorded by an earlier run of this job",
            idx,
            item_id=item_id,
            record=False,
        )
    item = adapter.item(obj, kind, page=idx)
    if opts.dry_run:
        if len(run.would_send) < WOULD_SEND_LIST_MAX:
            run.would_send.append(
                {
                    "id": item.id,
                    "kind": kind,
                    "object": oid,
                    "start": start.isoformat() if start else None,
                }
            )
        return _skip(oid, kind, DRY_RUN_REASON, idx, item_id=item.id, record=False)
    return item


async def _work(
    run: RunState,
    work: asyncio.Queue[ReplayItem | None],
    results: asyncio.Queue[Outcome | None],
    unreachable: list[int],
) -> None:
    assert run.target is not None or run.options.dry_run
    while True:
        item = await work.get()
        if item is None:
            return
        if run.stop_reason is not None or run.target is None:
            await results.put(
                Outcome(
                    item.id,
                    item.object_id,
                    item.kind,
                    FAILED,
                    f"not attempted: the job stopped ({run.stop_reason})",
                    page=item.page,
                    record=False,
                    final=False,
                )
            )
            continue
        headers = run.adapter.headers(run.secret, item.body, item)
        outcome = await run.target.send(item, headers)
        if outcome.status == FAILED and outcome.reason.startswith(UNREACHABLE):
            unreachable[0] += 1
            if unreachable[0] >= UNREACHABLE_STOP_AFTER:
                run.stop(f"{UNREACHABLE}: {unreachable[0]} items in a row could not reach it")
        else:
            unreachable[0] = 0
        run.latencies.add(outcome.latency_s)
        await results.put(outcome)


async def _record(
    run: RunState, results: asyncio.Queue[Outcome | None], pages: _Pages, started: float
) -> None:
    last_flush = time.monotonic()
    while True:
        # No ``wait_for`` here: on Python 3.11 it can swallow a cancellation.
        outcome = await results.get()
        if outcome is None:
            await _flush(run, pages)
            _report(run, started)
            return
        if outcome is not _TICK:
            _take(run, pages, outcome)
        now = time.monotonic()
        if len(run.pending) >= FLUSH_EVERY or now - last_flush >= FLUSH_INTERVAL_S:
            await _flush(run, pages)
            last_flush = now
            _report(run, started)


_TICK = Outcome("", "", "", SKIPPED)


async def _tick(results: asyncio.Queue[Outcome | None]) -> None:
    """Wake the recorder regularly, so a slow trickle of outcomes is still flushed."""
    while True:
        await asyncio.sleep(FLUSH_INTERVAL_S)
        results.put_nowait(_TICK)


def _take(run: RunState, pages: _Pages, outcome: Outcome) -> None:
    run.counts.add(outcome)
    REPLAY_ITEMS.labels(run.adapter.provider, outcome.status).inc()
    if outcome.final:
        pages.settle(outcome.page)
    if outcome.record and run.jobs is not None:
        run.pending.append(outcome)


async def _flush(run: RunState, pages: _Pages) -> None:
    if run.jobs is None:
        return
    batch = list(run.pending)
    status = await asyncio.to_thread(
        run.jobs.record,
        run.job.id,
        batch,
        checkpoint=pages.token,
        exhausted=pages.exhausted,
    )
    del run.pending[: len(batch)]
    if status == "cancelled":
        run.stop("cancelled: the job was cancelled", "cancelled")


def _final_flush(run: RunState, pages: _Pages) -> None:
    """After an interruption: store the checkpoint as far as it is known to be settled."""
    if run.jobs is None:
        return
    # On failure the lease expires and the checkpoint already stored is still safe.
    with contextlib.suppress(Exception):
        run.jobs.record(
            run.job.id, list(run.pending), checkpoint=pages.token, exhausted=pages.exhausted
        )
        run.pending.clear()


def _report(run: RunState, started: float) -> None:
    if run.progress is None:
        return
    c = run.counts
    run.progress(
        Progress(
            job=run.job.id,
            fetched=c.fetched,
            sent=c.sent,
            skipped=c.skipped,
            failed=c.failed,
            total=run.total,
            elapsed_s=time.perf_counter() - started,
        )
    )
