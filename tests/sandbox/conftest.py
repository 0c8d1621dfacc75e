"""Fixtures of the sandbox tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from calflow.sandbox import SandboxConfig

from ._support import API_KEY, Sandbox, make_sandbox


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async for sandbox in make_sandbox(SandboxConfig(api_key=API_KEY, rate_limit_per_min=0)):
        yield sandbox
