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
from datetime import UTC, datetime
from typing import Any

import httpx

from calflow.apps.cal_com.client import CalComClient
from calflow.apps.savvycal.client import SavvyCalClient
from calflow.errors import CalflowError, ConfigError, FieldError, ValidationError
from calflow.flowapp.http import RetryPolicy
from calflow.flowapp.runner import Runner
from calflow.integrations import Integration, IntegrationStore
from calflow.netguard import check_url
from calflow.replay.adapter import ProviderAdapter
from calflow.replay.calcom import CalComAdapter
from calflow.replay.jobs import Job, JobStore
from calflow.replay.model import (
    FAILED,
    SKIPPED,
    Counts,
    Outcome,
    ReplayItem,
    ReplayOptions,
    ReplaySummary,
)
from calflow.replay.pacing import Pacer
from calflow.replay.savvycal import SavvyCalAdapter
from calflow.replay.targets import (
    UNREACHABLE,
    Intake,
    IntakeTarget,
    Target,
    WebhookTarget,
    load_intake,
)
from calflow.settings import Settings, get_settings

SOURCE_POLICY = RetryPolicy(
    max_retries=6,
    backoff_base_s=0.5,
    backoff_max_s=30.0,
    max_total_wait_s=600.0,
    default_rate_wait_s=10.0,
    max_rate_retries=60,
)
"""Reading history is patient: Cal.com blocks a key for 60 s after its rate limit."""

FLUSH_EVERY = 500
FLUSH_INTERVAL_S = 0.25
UNREACHABLE_STOP_AFTER = 10
"""Consecutive items that found the target unreachable before the job stops."""
WOULD_SEND_LIST_MAX = 1000
PROVIDERS = ("cal_com", "savvycal")


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


def adapter_for(integration: Integration, runner: Runner) -> ProviderAdapter:
    """The replay adapter of an integration's provider; ``ConfigError`` for other apps."""
    if integration.app_key not in PROVIDERS:
        raise ConfigError(
            f"integration {integration.name!r} is a {integration.app_key!r} integration; "
            f"replay reads history from {' or '.join(PROVIDERS)}"
        )
    ctx = runner.context(runner.registry.app(integration.app_key), integration)
    if integration.app_key == "savvycal":
        return SavvyCalAdapter(SavvyCalClient(ctx))
    return CalComAdapter(CalComClient(ctx))


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
class _Run:
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


class ReplayEngine:
    """Runs replay jobs for one workspace's integrations and jobs."""

    def __init__(
        self,
        store: IntegrationStore | None = None,
        jobs: JobStore | None = None,
        *,
        settings: Settings | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        source_transport: httpx.AsyncBaseTransport | None = None,
        intake: Intake | None = None,
        source_policy: RetryPolicy = SOURCE_POLICY,
        backoff_base_s: float = 0.25,
    ) -> None:
        settings = settings or get_settings()
        self.store = store or IntegrationStore.default(settings)
        self.jobs = jobs or JobStore(self.store.engine, self.store.vault, self.store.workspace_id)
        self._transport = transport
        self._source_transport = source_transport
        self._intake = intake
        self._policy = source_policy
        self._backoff_base_s = backoff_base_s
        self.current_job: str | None = None
        """The job this engine last started or resumed (for messages after Ctrl-C)."""

    # ----------------------------------------------------------------- entry points

    async def start(
        self, options: ReplayOptions, progress: ProgressFn | None = None
    ) -> ReplaySummary:
        """Create a job for ``options`` and run it."""
        _check_options(options)
        integration = self.store.get(options.integration)
        secret = options.secret or _stored_secret(integration)
        if options.to:
            await check_url(options.to, allow_private=options.allow_private, field="to")
        if options.to and integration.app_key == "savvycal" and not secret:
            raise ConfigError(
                "SavvyCal signs every delivery: give --secret (the receiver's webhook "
                "secret), or register a webhook so the integration stores one"
            )
        target_name = options.to or ("calflow" if options.into else "dry-run")
        if options.dry_run:
            target_name = f"dry-run ({target_name})" if target_name != "dry-run" else target_name
        job = self.jobs.create(
            integration_id=integration.id,
            provider=integration.app_key,
            target=target_name,
            options=options.public(),
            secret=options.secret,
        )
        self.current_job = job.id
        return await self._execute(job, integration, options, secret, False, progress)

    async def resume(
        self,
        job_id: str,
        progress: ProgressFn | None = None,
        *,
        secret: str | None = None,
        allow_private: bool | None = None,
    ) -> ReplaySummary:
        """Continue a stopped, crashed or interrupted job from its checkpoint."""
        job = self.jobs.claim(job_id)
        self.current_job = job.id
        try:
            options = _options_of(job, allow_private)
            integration = self.store.get(job.integration_id)
            secret = secret or self.jobs.secret(job.id) or _stored_secret(integration)
            if options.to:
                await check_url(options.to, allow_private=options.allow_private, field="to")
        except BaseException as exc:
            message = exc.message if isinstance(exc, CalflowError) else type(exc).__name__
            self.jobs.finish(job.id, "failed", error=message, duration_s=0.0)
            raise
        return await self._execute(job, integration, options, secret, True, progress)

    # ----------------------------------------------------------------- the run

    async def _execute(
        self,
        job: Job,
        integration: Integration,
        options: ReplayOptions,
        secret: str | None,
        resume: bool,
        progress: ProgressFn | None,
    ) -> ReplaySummary:
        started = time.perf_counter()
        http = httpx.AsyncClient(
            timeout=30.0, follow_redirects=False, transport=self._source_transport
        )
        runner = Runner(store=self.store, http=http, policy=self._policy)
        run: _Run | None = None
        target: Target | None = None
        status, error = "failed", None
        try:
            adapter = adapter_for(integration, runner)
            kinds = adapter.resolve_kinds(options.kinds)
            target = self._target(options, adapter, integration)
            run = _Run(
                job=job,
                adapter=adapter,
                target=target,
                options=options,
                secret=secret,
                jobs=None if options.dry_run else self.jobs,
                resume=resume,
                progress=progress,
                kinds=kinds,
            )
            await _pipeline(run, started)
            if run.stop_reason is None:
                status = "completed"
            else:
                status, error = run.stop_status, run.stop_reason
        except asyncio.CancelledError:
            status, error = "interrupted", "interrupted (Ctrl-C or shutdown)"
            raise
        except CalflowError as exc:
            status, error = "failed", exc.message
            raise
        finally:
            if target is not None:
                await target.aclose()
            await http.aclose()
            duration = time.perf_counter() - started
            self.jobs.finish(job.id, status, error=error, duration_s=duration)
        return self._summary(run, job, integration, status, error, duration)

    def _target(
        self, options: ReplayOptions, adapter: ProviderAdapter, integration: Integration
    ) -> Target | None:
        if options.dry_run:
            return None
        if options.into:
            intake = self._intake or load_intake()
            return IntakeTarget(intake, adapter, integration.id)
        assert options.to is not None
        return WebhookTarget(
            options.to,
            Pacer(options.rate),
            concurrency=options.concurrency,
            timeout_s=options.timeout_s,
            max_attempts=options.max_attempts,
            backoff_base_s=self._backoff_base_s,
            transport=self._transport,
        )

    def _summary(
        self,
        run: _Run | None,
        job: Job,
        integration: Integration,
        status: str,
        error: str | None,
        duration: float,
    ) -> ReplaySummary:
        final = self.jobs.get(job.id)
        counts = run.counts if run is not None else Counts()
        timings: dict[str, float] = {}
        if run is not None:
            timings = {
                "fetch_s": round(run.fetch_s, 4),
                "send_p50_ms": round(run.latencies.percentile(0.5) * 1000, 3),
                "send_p95_ms": round(run.latencies.percentile(0.95) * 1000, 3),
                "send_max_ms": round(run.latencies.percentile(1.0) * 1000, 3),
            }
        return ReplaySummary(
            job=job.id,
            status=final.status if status != "interrupted" else status,
            provider=integration.app_key,
            integration=integration.name,
            target=job.target,
            dry_run=job.dry_run,
            counts=counts,
            duration_s=duration,
            error=error,
            job_totals=None if job.dry_run else self.jobs.totals(job.id),
            timings=timings,
            would_send=run.would_send if run is not None else [],
        )


# --------------------------------------------------------------------- pipeline


async def _pipeline(run: _Run, started: float) -> None:
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
    run: _Run,
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
    run: _Run, work: asyncio.Queue[ReplayItem | None], results: asyncio.Queue[Outcome | None]
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
    run: _Run,
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


def _prepare(run: _Run, obj: Mapping[str, Any], idx: int, done: set[str]) -> Outcome | ReplayItem:
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
        return _skip(oid, kind, "dry run: would send", idx, item_id=item.id, record=False)
    return item


async def _work(
    run: _Run,
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
    run: _Run, results: asyncio.Queue[Outcome | None], pages: _Pages, started: float
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


def _take(run: _Run, pages: _Pages, outcome: Outcome) -> None:
    run.counts.add(outcome)
    if outcome.final:
        pages.settle(outcome.page)
    if outcome.record and run.jobs is not None:
        run.pending.append(outcome)


async def _flush(run: _Run, pages: _Pages) -> None:
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


def _final_flush(run: _Run, pages: _Pages) -> None:
    """After an interruption: store the checkpoint as far as it is known to be settled."""
    if run.jobs is None:
        return
    # On failure the lease expires and the checkpoint already stored is still safe.
    with contextlib.suppress(Exception):
        run.jobs.record(
            run.job.id, list(run.pending), checkpoint=pages.token, exhausted=pages.exhausted
        )
        run.pending.clear()


def _report(run: _Run, started: float) -> None:
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


# --------------------------------------------------------------------- helpers


def _stored_secret(integration: Integration) -> str | None:
    value = integration.value("webhook_secret")
    return str(value) if value else None


def _check_options(options: ReplayOptions) -> None:
    errors: list[FieldError] = []
    if options.to and options.into:
        errors.append(FieldError("to", "give either --to URL or --into calflow, not both"))
    if not options.dry_run and not options.to and not options.into:
        errors.append(FieldError("to", "give --to URL or --into calflow (or --dry-run)"))
    if options.into and options.into != "calflow":
        errors.append(FieldError("into", f"{options.into!r}: the only choice is 'calflow'"))
    if options.concurrency < 1 or options.concurrency > 512:
        errors.append(FieldError("concurrency", "must be between 1 and 512"))
    if options.rate is not None and options.rate <= 0:
        errors.append(FieldError("rate", "must be a positive number of items per second"))
    if options.limit is not None and options.limit < 1:
        errors.append(FieldError("limit", "must be at least 1"))
    if options.max_attempts < 1:
        errors.append(FieldError("max_attempts", "must be at least 1"))
    if options.timeout_s <= 0:
        errors.append(FieldError("timeout", "must be positive"))
    if options.since and options.until and options.since >= options.until:
        errors.append(FieldError("until", "must be after --since"))
    if errors:
        raise ValidationError("invalid replay options", errors)


def _options_of(job: Job, allow_private: bool | None) -> ReplayOptions:
    o = job.options

    def when(key: str) -> datetime | None:
        raw = o.get(key)
        return datetime.fromisoformat(raw).astimezone(UTC) if raw else None

    return ReplayOptions(
        integration=job.integration_id,
        to=o.get("to"),
        into=o.get("into"),
        since=when("since"),
        until=when("until"),
        kinds=tuple(o.get("kinds") or ()),
        concurrency=int(o.get("concurrency") or 16),
        rate=o.get("rate"),
        dry_run=False,
        allow_private=bool(o.get("allow_private")) if allow_private is None else allow_private,
        limit=None,
        timeout_s=float(o.get("timeout_s") or 10.0),
        max_attempts=int(o.get("max_attempts") or 5),
    )


async def run_replay(
    options: ReplayOptions,
    *,
    store: IntegrationStore | None = None,
    settings: Settings | None = None,
    progress: ProgressFn | None = None,
    intake: Intake | None = None,
) -> ReplaySummary:
    """Start a replay job for ``options`` and run it to its end (see :class:`ReplayEngine`)."""
    engine = ReplayEngine(store, settings=settings, intake=intake)
    return await engine.start(options, progress)


async def resume_replay(
    job_id: str,
    *,
    store: IntegrationStore | None = None,
    settings: Settings | None = None,
    progress: ProgressFn | None = None,
    intake: Intake | None = None,
    secret: str | None = None,
) -> ReplaySummary:
    """Resume a replay job from its checkpoint."""
    engine = ReplayEngine(store, settings=settings, intake=intake)
    return await engine.resume(job_id, progress, secret=secret)
