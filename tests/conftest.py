"""Fixtures every test gets: loopback targets allowed, as for an operator who runs the
sandbox and receivers on this machine (``CALFLOW_ALLOW_PRIVATE``; see ``db_fixtures``),
and no event loop left open in the main thread after a test."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator

import pytest

from db_fixtures import allow_local_targets


@pytest.fixture(autouse=True)
def _local_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    allow_local_targets(monkeypatch)


@pytest.fixture(autouse=True)
def _no_loop_left_open() -> Iterator[None]:
    """pytest-asyncio (1.3) asks the policy for the main thread's loop before each async
    test, which makes one when none is set, and puts it back afterwards, never closed:
    its self-pipe socket is then reported unclosed in whichever later test the garbage
    collector happens to run. Close it here, after pytest-asyncio's own teardown."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loop = asyncio.get_event_loop_policy().get_event_loop()
        except RuntimeError:
            return
        if not loop.is_running():
            loop.close()
            asyncio.set_event_loop(None)
