"""Replay jobs: start one from options, or resume one from its checkpoint.

:class:`ReplayEngine` resolves the integration and its provider adapter, checks the
target (URL guard, signing secret), creates or claims the job, runs the pipeline
(:mod:`calflow.replay.pipeline`) and always leaves the job in a final state with
its counts, so a run that fails or is interrupted can be resumed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

import httpx

from calflow.apps.cal_com.client import CalComClient
from calflow.apps.savvycal.client import SavvyCalClient
from calflow.errors import CalflowError, ConfigError, FieldError, ValidationError
from calflow.flowapp.http import RetryPolicy
from calflow.flowapp.runner import Runner
from calflow.integrations import Integration, IntegrationStore
from calflow.logs import fields
from calflow.net.clients import outbound_client
from calflow.netpolicy import Allowance, check_target, operator_allowance, tenant_allowance
from calflow.replay.adapter import ProviderAdapter
from calflow.replay.calcom import CalComAdapter
from calflow.replay.jobs import Job, JobStore
from calflow.replay.model import (
    Counts,
    ReplayOptions,
    ReplaySummary,
)
from calflow.replay.pacing import Pacer
from calflow.replay.pipeline import ProgressFn, RunState, run_pipeline
from calflow.replay.savvycal import SavvyCalAdapter
from calflow.replay.targets import (
    Intake,
    IntakeTarget,
    Target,
    WebhookTarget,
    check_standard_secret,
    load_intake,
    signature_problems,
    standard_signer,
)
from calflow.server.signatures import PROVIDER, STANDARD
from calflow.settings import Settings, get_settings

log = logging.getLogger("calflow.replay")

SOURCE_POLICY = RetryPolicy(
    max_retries=6,
    backoff_base_s=0.5,
    backoff_max_s=30.0,
    max_total_wait_s=600.0,
    default_rate_wait_s=10.0,
    max_rate_retries=60,
)
"""Reading history is patient: Cal.com blocks a key for 60 s after its rate limit."""

PROVIDERS = ("cal_com", "savvycal")


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
        grant: Allowance | None = None,
        flag_text: str = "allow_private=true",
    ) -> None:
        """``grant``: the non-public targets a job's ``allow_private`` may reach (the CLI's
        ``--allow-private`` gives everything); by default the operator's
        ``CALFLOW_ALLOW_PRIVATE``. ``flag_text``: how a refusal names that option."""
        settings = settings or get_settings()
        self._operator = operator_allowance(settings)
        self._grant = grant if grant is not None else self._operator
        self._flag_text = flag_text
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
            await self._check_to(options)
        if options.to and options.signature == STANDARD:
            check_standard_secret(secret)
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
                await self._check_to(options)
        except BaseException as exc:
            message = exc.message if isinstance(exc, CalflowError) else type(exc).__name__
            self.jobs.finish(job.id, "failed", error=message, duration_s=0.0)
            raise
        return await self._execute(job, integration, options, secret, True, progress)

    async def _check_to(self, options: ReplayOptions) -> None:
        """The target's address, allowed when public, or when the job asks
        ``allow_private`` and the engine's grant covers it."""
        assert options.to is not None
        allowance = tenant_allowance(options.allow_private, self._grant)
        await check_target(
            options.to,
            field="to",
            allowance=allowance,
            with_flag=self._grant,
            flag_text=self._flag_text,
        )

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
        http = outbound_client(self._operator, transport=self._source_transport)
        runner = Runner(
            store=self.store,
            http=http,
            policy=self._policy,
            publish=False,
            allowance=self._operator,
        )
        run: RunState | None = None
        target: Target | None = None
        status, error = "failed", None
        try:
            adapter = adapter_for(integration, runner)
            # the source's base_url and secrets are checked like any call's (netpolicy)
            await runner.guard(
                runner.context(runner.registry.app(integration.app_key), integration)
            )
            kinds = adapter.resolve_kinds(options.kinds)
            target = self._target(options, adapter, integration, secret)
            run = RunState(
                job=job,
                adapter=adapter,
                target=target,
                options=options,
                secret=None if options.to and options.signature == STANDARD else secret,
                jobs=None if options.dry_run else self.jobs,
                resume=resume,
                progress=progress,
                kinds=kinds,
            )
            await run_pipeline(run, started)
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
            counts = run.counts.to_dict() if run is not None and options.dry_run else None
            self.jobs.finish(job.id, status, error=error, duration_s=duration, counts=counts)
            _log_job(job, integration, status, run, duration)
        summary = self._summary(run, job, integration, status, error, duration)
        summary.history = bool(options.into) and not options.run_workflows
        return summary

    def _target(
        self,
        options: ReplayOptions,
        adapter: ProviderAdapter,
        integration: Integration,
        secret: str | None,
    ) -> Target | None:
        if options.dry_run:
            return None
        if options.into:
            intake = self._intake or load_intake(self.store)
            return IntakeTarget(intake, adapter, integration.id, options.run_workflows)
        assert options.to is not None
        return WebhookTarget(
            options.to,
            Pacer(options.rate),
            concurrency=options.concurrency,
            timeout_s=options.timeout_s,
            max_attempts=options.max_attempts,
            backoff_base_s=self._backoff_base_s,
            transport=self._transport,
            sign=standard_signer(secret) if options.signature == STANDARD else None,
            allowance=tenant_allowance(options.allow_private, self._grant),
        )

    def _summary(
        self,
        run: RunState | None,
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
    errors += signature_problems(options.signature, options.into)
    if options.run_workflows and not options.into:
        errors.append(
            FieldError("run_workflows", "starts workflows of --into calflow only", "scope")
        )
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
        signature=str(o.get("signature") or PROVIDER),
        run_workflows=bool(o.get("run_workflows")),
    )


def _log_job(
    job: Job, integration: Integration, status: str, run: RunState | None, duration: float
) -> None:
    """One line per replay job that ends: its id, provider, status and counts."""
    done = run.counts.to_dict() if run is not None else {}
    log.info(
        "replay job %s %s: %s", job.id, integration.app_key, status,
        extra=fields(job=job.id, provider=integration.app_key, status=status,
                     sent=done.get("sent", 0), skipped=done.get("skipped", 0),
                     failed=done.get("failed", 0), s=round(duration, 2),
                     workspace=integration.workspace_id),
    )  # fmt: skip


async def run_replay(
    options: ReplayOptions,
    *,
    store: IntegrationStore | None = None,
    settings: Settings | None = None,
    progress: ProgressFn | None = None,
    intake: Intake | None = None,
    grant: Allowance | None = None,
) -> ReplaySummary:
    """Start a replay job for ``options`` and run it to its end (see :class:`ReplayEngine`)."""
    engine = ReplayEngine(store, settings=settings, intake=intake, grant=grant)
    return await engine.start(options, progress)


async def resume_replay(
    job_id: str,
    *,
    store: IntegrationStore | None = None,
    settings: Settings | None = None,
    progress: ProgressFn | None = None,
    intake: Intake | None = None,
    secret: str | None = None,
    grant: Allowance | None = None,
) -> ReplaySummary:
    """Resume a replay job from its checkpoint."""
    engine = ReplayEngine(store, settings=settings, intake=intake, grant=grant)
    return await engine.resume(job_id, progress, secret=secret)
