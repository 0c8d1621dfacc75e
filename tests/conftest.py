"""Fixtures every test gets: loopback targets allowed, as for an operator who runs the
sandbox and receivers on this machine (``CALFLOW_ALLOW_PRIVATE``; see ``db_fixtures``)."""

from __future__ import annotations

import pytest

from db_fixtures import allow_local_targets


@pytest.fixture(autouse=True)
def _local_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    allow_local_targets(monkeypatch)
