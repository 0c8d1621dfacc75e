"""``calflow serve``'s limit flags are checked by the settings' rules before it serves."""

from __future__ import annotations

from pathlib import Path

import pytest

from db_fixtures import clean_calflow_env
from e2e.serve_process import CalflowHome

__all__ = ["clean_calflow_env"]


@pytest.mark.parametrize(
    ("flag", "value", "named"),
    [
        ("--header-timeout", "0", "CALFLOW_HEADER_TIMEOUT_S: Input should be greater than 0"),
        ("--max-requests", "0", "CALFLOW_MAX_REQUESTS: Input should be greater than or equal to 1"),
        ("--api-rate-limit", "fast", "CALFLOW_API_RATE_LIMIT: Value error, 'fast' is not a rate"),
    ],
)
def test_a_bad_limit_flag_exits_2_naming_the_setting(
    tmp_path: Path, flag: str, value: str, named: str
) -> None:
    result = CalflowHome(tmp_path).run("serve", "--port", "0", flag, value)
    assert result.code == 2, str(result)
    assert named in " ".join((result.stdout + result.stderr).split())
