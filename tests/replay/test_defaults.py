"""The replay defaults the CLI and the API show are the engine's (they are written out
there so that importing them does not load the replay engine)."""

from __future__ import annotations

import inspect

from calflow.api.models import ReplayStart
from calflow.cli.replay_cmd import replay
from calflow.replay.model import DEFAULT_CONCURRENCY


def test_the_cli_and_the_api_default_to_the_engines_concurrency() -> None:
    option = inspect.signature(replay).parameters["concurrency"].default
    assert option.default == DEFAULT_CONCURRENCY == 32
    assert ReplayStart.model_fields["concurrency"].default == DEFAULT_CONCURRENCY
