"""The replay job store on SQLite and PostgreSQL: outcomes, checkpoints, lease, cancel."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text, update

from calflow.db.engine import open_engine, reset_engines
from calflow.db.models import ReplayJobRow
from calflow.db.types import utcnow
from calflow.errors import ConfigError, NotFoundError
from calflow.replay.jobs import JobStore
from calflow.replay.model import FAILED, SENT, SKIPPED, Outcome
from calflow.settings import Settings
from calflow.vault import Vault
from db_fixtures import clean_calflow_env, isolated_pg_url, sqlite_url

__all__ = ["clean_calflow_env", "isolated_pg_url", "sqlite_url"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def jobs(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[JobStore]:
    url = str(
        request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "isolated_pg_url")
    )
    settings = Settings(home=str(tmp_path), database_url=url)
    yield JobStore(open_engine(settings), Vault.from_settings(settings))
    reset_engines()


def outcome(i: int, status: str = SENT, reason: str = "") -> Outcome:
    return Outcome(f"item_{i:04d}", f"obj_{i}", "event.created", status, reason)  # type: ignore[arg-type]


def make(jobs: JobStore, secret: str | None = "s3cret") -> str:  # noqa: S107
    job = jobs.create(
        integration_id="int_x", provider="savvycal", target="https://example.com/h",
        options={"to": "https://example.com/h"}, secret=secret,
    )  # fmt: skip
    return job.id


def test_record_upserts_outcomes_and_moves_the_checkpoint(jobs: JobStore) -> None:
    job = make(jobs)
    status = jobs.record(
        job,
        [outcome(1), outcome(2, FAILED, "target refused: 400"), outcome(3, SKIPPED, "filtered")],
        checkpoint="cursor-1",
        exhausted=False,
    )
    assert status == "running"
    assert jobs.totals(job) == {"items": 3, "sent": 1, "skipped": 1, "failed": 1}
    assert jobs.get(job).checkpoint == "cursor-1"
    jobs.record(job, [outcome(2)], checkpoint="cursor-2", exhausted=True)  # retried: now sent
    assert jobs.totals(job) == {"items": 3, "sent": 2, "skipped": 1, "failed": 0}
    found = jobs.get(job)
    assert found.checkpoint == "cursor-2" and found.exhausted
    assert jobs.recorded(job, ["item_0001", "item_0009"]) == {"item_0001"}
    assert jobs.recorded(job, []) == set()


def test_failed_items_stream_in_batches(jobs: JobStore) -> None:
    job = make(jobs)
    jobs.record(
        job, [outcome(i, FAILED if i % 3 else SENT, "x") for i in range(50)],
        checkpoint=None, exhausted=False,
    )  # fmt: skip
    failed = list(jobs.failed_items(job, batch=7))
    assert len(failed) == len([i for i in range(50) if i % 3])
    assert len({f[0] for f in failed}) == len(failed)
    assert [f[0] for f in failed] == sorted(f[0] for f in failed)


def test_the_lease_refuses_a_second_live_runner_and_takes_over_a_dead_one(
    jobs: JobStore,
) -> None:
    job = make(jobs)
    # A live process on this host holds it (a child we keep alive):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with jobs.engine.begin() as conn:
            conn.execute(
                update(ReplayJobRow)
                .where(ReplayJobRow.id == job)
                .values(owner=f"{os.uname().nodename}:{child.pid}", heartbeat_at=utcnow())
            )
        with pytest.raises(ConfigError, match="is running in process"):
            jobs.claim(job)
        # ...but once its heartbeat is stale, the job can be taken over.
        claimed = jobs.claim(job, now=utcnow() + timedelta(seconds=120))
        assert claimed.owner is not None and claimed.owner.endswith(f":{os.getpid()}")
    finally:
        child.kill()
        child.wait()
    # A dead owner on this host: taken over at once.
    with jobs.engine.begin() as conn:
        conn.execute(
            update(ReplayJobRow)
            .where(ReplayJobRow.id == job)
            .values(owner=f"{os.uname().nodename}:{child.pid}", heartbeat_at=utcnow())
        )
    assert jobs.claim(job).runs == 3


def test_cancel_is_seen_by_the_next_record_and_kept_by_finish(jobs: JobStore) -> None:
    job = make(jobs)
    assert jobs.cancel(job).status == "cancelled"
    assert jobs.record(job, [outcome(1)], checkpoint=None, exhausted=False) == "cancelled"
    jobs.finish(job, "completed", error=None, duration_s=1.5)
    found = jobs.get(job)
    assert found.status == "cancelled" and found.duration_s == pytest.approx(1.5)
    assert found.owner is None and found.finished_at is not None


def test_secrets_are_encrypted_and_unknown_jobs_are_not_found(jobs: JobStore) -> None:
    job = make(jobs, secret="very-secret-value")
    assert jobs.secret(job) == "very-secret-value"
    with jobs.engine.connect() as conn:
        raw = conn.execute(text("SELECT secret FROM replay_jobs")).scalar_one()
    assert "very-secret-value" not in raw
    assert jobs.secret(make(jobs, secret=None)) is None
    with pytest.raises(NotFoundError):
        jobs.get("rpl_nope")
    assert [j.id for j in jobs.list()][-1] == job


def test_a_dry_run_job_cannot_be_resumed(jobs: JobStore) -> None:
    job = jobs.create(
        integration_id="int_x", provider="savvycal", target="dry-run",
        options={"dry_run": True}, secret=None,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="dry run"):
        jobs.claim(job.id)
