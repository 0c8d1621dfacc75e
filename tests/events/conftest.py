"""Fixtures of the event normalizer tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ._support import Sandbox, make_sandbox


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async for sandbox in make_sandbox():
        yield sandbox
