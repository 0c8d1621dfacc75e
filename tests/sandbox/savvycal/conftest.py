"""Fixtures of the SavvyCal sandbox tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from calflow.sandbox import SandboxConfig

from ._support import CLOCK, TOKEN, Sandbox, make_sandbox


@pytest.fixture
async def sc() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(seed=60, savvycal_token=TOKEN, clock_start=CLOCK)
    async for sandbox in make_sandbox(config):
        yield sandbox
