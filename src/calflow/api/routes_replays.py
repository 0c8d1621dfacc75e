"""Replay jobs: re-deliver an integration's booking history into calflow or to a URL.

- ``POST /api/v1/replays`` ``{"integration", "target": "calflow" | URL, "since",
  "until", "kinds", "concurrency", "rate", "dry_run", "allow_private", "limit",
  "timeout_s", "max_attempts", "secret", "signature", "run_workflows"}`` (the options
  of ``calflow replay``; ``signature``: ``provider``, the default, or ``standard`` for
  Standard Webhooks; ``run_workflows`` with target ``calflow``: old changes start
  workflows too) starts a job in the server process and answers 202 with it at once.
  A ``target`` that is not a public address is a 422 naming ``target``; ``allow_private``
  is honoured only inside the operator's ``CALFLOW_ALLOW_PRIVATE`` (else a 422 naming
  ``allow_private`` and the setting).
- ``GET /api/v1/replays`` and ``GET /api/v1/replays/{id}``: status, totals (sent,
  skipped, failed), a dry run's ``counts``, live progress while it runs here, timing.
- ``POST /api/v1/replays/{id}/cancel``: the job stops at its next checkpoint and stays
  resumable; ``POST /api/v1/replays/{id}/resume`` continues it from its checkpoint
  (409 while it runs).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from calflow.api.deps import ApiRoute, Scope, ScopeDep
from calflow.api.errors import ERROR_RESPONSES, ApiError
from calflow.api.models import ReplayList, ReplayOut, ReplayStart
from calflow.api.replays import ReplayManager
from calflow.errors import ConfigError, FieldError, ValidationError
from calflow.replay import ReplayOptions
from calflow.replay.jobs import Job
from calflow.replay.timespec import parse_when

router = APIRouter(route_class=ApiRoute, responses=ERROR_RESPONSES, tags=["replays"])


def _manager(scope: Scope) -> ReplayManager:
    return scope.state.replays


def _out(scope: Scope, job: Job) -> ReplayOut:
    manager = _manager(scope)
    data = job.public(scope.jobs.totals(job.id))
    return ReplayOut(**data, running=manager.running(job.id), progress=manager.progress(job.id))


def _options(body: ReplayStart) -> ReplayOptions:
    into = "calflow" if body.target == "calflow" else None
    to = None if into else body.target
    if to is not None and not to.startswith(("http://", "https://")):
        raise ValidationError(
            "invalid target", [FieldError("target", "'calflow' or an http(s) URL", "format")]
        )
    return ReplayOptions(
        integration=body.integration,
        to=to,
        into=into,
        secret=body.secret,
        since=parse_when(body.since, "since"),
        until=parse_when(body.until, "until"),
        kinds=tuple(k for k in body.kinds if k.strip()),
        concurrency=body.concurrency,
        rate=body.rate,
        dry_run=body.dry_run,
        allow_private=body.allow_private,
        limit=body.limit,
        timeout_s=body.timeout_s,
        max_attempts=body.max_attempts,
        signature=body.signature,
        run_workflows=body.run_workflows,
    )


@router.post("/replays", status_code=202)
async def start_replay(scope: ScopeDep, body: ReplayStart) -> ReplayOut:
    """Start a replay job in the background."""
    options = _options(body)
    await asyncio.to_thread(scope.integrations.get, options.integration)  # 404 first
    progress = _manager(scope).progress_fn()
    try:
        job_id = await _manager(scope).start(
            scope.integrations, scope.jobs, lambda engine: engine.start(options, progress)
        )
    except ValidationError as exc:  # the engine names the target "to", as the CLI does
        raise ValidationError(
            exc.message,
            [FieldError("target" if e.path == "to" else e.path, e.message, e.rule)
             for e in exc.errors],
        ) from None  # fmt: skip
    return await asyncio.to_thread(lambda: _out(scope, scope.jobs.get(job_id)))


@router.get("/replays")
def list_replays(scope: ScopeDep) -> ReplayList:
    """Recent replay jobs, newest first."""
    return ReplayList(items=[_out(scope, j) for j in scope.jobs.list(100)])


@router.get("/replays/{job_id}")
def get_replay(scope: ScopeDep, job_id: str) -> ReplayOut:
    """One job: status, totals, live progress and timing."""
    return _out(scope, scope.jobs.get(job_id))


@router.post("/replays/{job_id}/cancel")
def cancel_replay(scope: ScopeDep, job_id: str) -> ReplayOut:
    """Ask the job to stop (at its next checkpoint); it stays resumable."""
    return _out(scope, scope.jobs.cancel(job_id))


@router.post("/replays/{job_id}/resume", status_code=202)
async def resume_replay(scope: ScopeDep, job_id: str) -> ReplayOut:
    """Continue a stopped, failed or interrupted job from its checkpoint."""
    job = await asyncio.to_thread(scope.jobs.get, job_id)
    if _manager(scope).running(job.id):
        raise ApiError(409, "CONFLICT", f"replay job {job.id} is running; cancel it first")
    progress = _manager(scope).progress_fn()
    try:
        await _manager(scope).start(
            scope.integrations, scope.jobs, lambda engine: engine.resume(job.id, progress)
        )
    except ConfigError as exc:
        if exc.code == "NOT_FOUND":
            raise
        raise ApiError(409, "CONFLICT", exc.message) from None
    return await asyncio.to_thread(lambda: _out(scope, scope.jobs.get(job.id)))
