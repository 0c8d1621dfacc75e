"""Leases name a batch: a batch resumed after a crash and a new claim never share a run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from calflow.db.engine import reset_engines, write_transaction
from calflow.db.models import RunRow
from calflow.db.types import utcnow
from calflow.integrations import IntegrationStore
from calflow.settings import Settings
from calflow.workflows.runs import RunStore

from .conftest import isolated_pg_url, sqlite_url

__all__ = ["isolated_pg_url", "sqlite_url"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def runs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "isolated_pg_url")
    store = IntegrationStore.default(Settings(home=tmp_path, database_url=url))
    runs = RunStore(store.engine)
    with write_transaction(store.engine) as conn:
        RunStore.insert_new(conn, [
            RunStore.new_row(f"run_{n}", "default", workflow_id="wf", workflow_name="w",
                             workflow_version=1, event_id=f"evt_{n}", provider="cal_com",
                             booking_uid=f"uid-{n}", state={})
            for n in range(3)
        ])  # fmt: skip
    yield runs
    reset_engines()


def _expire(runs: RunStore) -> None:
    with write_transaction(runs.engine) as conn:
        conn.execute(update(RunRow).values(lease_until=utcnow()))


def test_a_claim_after_the_lease_ran_out_leaves_the_old_batch_nothing(runs: RunStore) -> None:
    ids = runs.claim("w1#a", 10, 60)
    assert sorted(ids) == ["run_0", "run_1", "run_2"]
    assert runs.claim("w1#b", 10, 60) == []  # held: nobody else takes them
    _expire(runs)  # w1 died and came back late
    assert sorted(runs.claim("w1#b", 10, 60)) == ids
    assert runs.held("w1#a", ids, 60) == []  # the resumed batch a finds nothing to do
    assert sorted(r.id for r in runs.held("w1#b", ids, 60)) == ids
    assert {r["worker"] for r in runs.list()} == {"w1"}


def test_a_resumed_batch_that_renews_first_keeps_its_runs(runs: RunStore) -> None:
    ids = runs.claim("w1#a", 10, 60)
    _expire(runs)
    assert sorted(r.id for r in runs.held("w1#a", ids, 60)) == ids  # renews the lease
    assert runs.claim("w1#b", 10, 60) == []
