"""``calflow.server.ratelimit``: the per-token limit, its refusal and its setting."""

from __future__ import annotations

import pytest

from calflow.errors import ConfigError
from calflow.server.ratelimit import TokenRateLimit, parse_rate
from calflow.settings import Settings, overridden


def test_each_token_has_its_own_count_and_a_refusal_uses_no_allowance() -> None:
    rate = TokenRateLimit("3/hour;4/day")
    assert [rate.hit("a") for _ in range(3)] == [None, None, None]
    wait = rate.hit("a")
    assert wait is not None and 3000 < wait <= 3600  # the hour's window, whole seconds
    assert rate.hit("b") is None  # another token
    message, headers = rate.refusal(wait)
    assert "3 per 1 hour, 4 per 1 day (CALFLOW_API_RATE_LIMIT)" in message
    assert headers == {"Retry-After": f"{wait:.0f}"}
    # refused calls did not count against the day: only 3 of its 4 are used
    rate.items = rate.items[1:]  # the day's limit alone now
    assert rate.hit("a") is None
    assert rate.hit("a") is not None


def test_no_limit_when_empty() -> None:
    rate = TokenRateLimit("")
    assert all(rate.hit("a") is None for _ in range(1000))
    assert rate.describe() == "none"


@pytest.mark.parametrize("text", ["lots", "5/fortnight", "-1/second"])
def test_a_bad_rate_is_a_config_error_naming_the_setting(text: str) -> None:
    with pytest.raises(ConfigError, match=r"CALFLOW_API_RATE_LIMIT: .* is not a rate"):
        parse_rate(text)
    with pytest.raises(ConfigError, match="CALFLOW_API_RATE_LIMIT"):
        overridden(Settings(), {"api_rate_limit": text})


def test_overridden_checks_flags_by_the_settings_rules() -> None:
    base = Settings()
    assert overridden(base, {"max_requests": None}) is base
    assert overridden(base, {"max_requests": 7}).max_requests == 7
    with pytest.raises(
        ConfigError, match="CALFLOW_HEADER_TIMEOUT_S: Input should be greater than 0"
    ):
        overridden(base, {"header_timeout_s": 0})
