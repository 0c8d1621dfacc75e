"""Fixtures of the sandbox tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from calflow.sandbox import SandboxConfig

from ._support import API_KEY, CLOCK, Sandbox, make_sandbox


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(api_key=API_KEY, rate_limit_per_min=0, clock_start=CLOCK)
    async for sandbox in make_sandbox(config):
        yield sandbox
