"""A flood of copies of one signed delivery against ``calflow serve`` as a real process
(issue #16, items 5 and 7), on SQLite and PostgreSQL, while the probe measures
``/healthz`` and webhook latency: every copy is answered 200, the event is stored once
and counts every copy, only its first ``KEPT_DELIVERIES`` deliveries are rows, and the
server grows by at most ``GROWTH_MB``."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from calflow.db.engine import reset_engines
from calflow.db.models import EventDeliveryRow, EventRow
from calflow.events.inbox import KEPT_DELIVERIES
from db_fixtures import clean_calflow_env, isolated_pg_url

from .support import LatencyProbe, guarded_server, signed_delivery
from .test_template_attacks import GROWTH_MB, PROBE_BOUND_S, _rss_mb

pytestmark = pytest.mark.slow

__all__ = ["clean_calflow_env", "isolated_pg_url"]

COPIES = 2000


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    yield None if request.param == "sqlite" else str(request.getfixturevalue("isolated_pg_url"))


def test_a_flood_of_one_delivery_is_counted_not_stored(
    tmp_path: Path, database_url: str | None
) -> None:
    body, headers = signed_delivery()
    with guarded_server(tmp_path, database_url) as g:
        url = f"{g.server.url}{g.hook_path}"

        def send(count: int) -> list[int]:
            with httpx.Client(timeout=30) as client:
                return [client.post(url, content=body, headers=headers).status_code
                        for _ in range(count)]  # fmt: skip

        assert send(1) == [200]
        before = _rss_mb(g)
        with LatencyProbe(g) as probe, ThreadPoolExecutor(8) as pool:
            statuses = [s for batch in pool.map(send, [(COPIES - 1) // 8] * 8) for s in batch]
        probe.assert_each_within(PROBE_BOUND_S)
        grown = _rss_mb(g) - before
        engine = g.home.store().engine
        with engine.connect() as conn:
            flood = conn.execute(select(func.max(EventRow.deliveries))).scalar_one()
            rows = conn.execute(select(func.count()).select_from(EventDeliveryRow)).scalar_one()
            events = conn.execute(select(func.count()).select_from(EventRow)).scalar_one()
        reset_engines()
    assert set(statuses) == {200}
    assert flood == 1 + len(statuses)  # every copy counted on the one event
    probes = len(probe.of("webhook"))  # each probe delivery is an event of its own
    assert events == 1 + probes
    assert rows == KEPT_DELIVERIES + probes, rows
    assert grown < GROWTH_MB, grown
