"""The operator's allowance of non-public targets (``CALFLOW_ALLOW_PRIVATE``) and the checks
of every URL a tenant can set."""

from __future__ import annotations

import ipaddress
import re

import pytest

from calflow.errors import ConfigError, ValidationError
from calflow.netpolicy import (
    EVERYTHING,
    NOTHING,
    Allowance,
    binding,
    check_fields,
    check_fields_sync,
    check_host_sync,
    check_target,
    check_target_sync,
    is_empty,
    operator_allowance,
    parse_allowance,
    permits,
    tenant_allowance,
)
from calflow.settings import Settings

METADATA = "http://169.254.169.254/latest/meta-data/"


def test_the_setting_lists_networks_addresses_and_host_names() -> None:
    found = parse_allowance(" 10.0.0.0/8, 127.0.0.1 ,[::1], Cal.LAN., ")
    assert found.networks == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    assert found.hosts == frozenset({"cal.lan"})
    assert permits(found, "x", "10.9.8.7") and permits(found, "x", "127.0.0.1")
    assert permits(found, "x", "::ffff:10.1.1.1")  # the IPv4 address it wraps
    assert not permits(found, "x", "127.0.0.2") and not permits(found, "x", "169.254.169.254")
    assert permits(found, "CAL.lan", "192.168.1.5")  # a listed name, whatever it resolves to
    assert parse_allowance("") == NOTHING and is_empty(NOTHING)
    assert parse_allowance("10.0.0.0/8,*") == EVERYTHING


@pytest.mark.parametrize("entry", ["http://cal.lan", "cal lan", "a/b", "-/8", "x..y"])
def test_a_bad_entry_names_the_setting(entry: str) -> None:
    with pytest.raises(ConfigError, match="CALFLOW_ALLOW_PRIVATE") as caught:
        parse_allowance(f"127.0.0.1,{entry}")
    assert repr(entry.strip()) in caught.value.message


def test_the_operator_allowance_comes_from_the_settings() -> None:
    settings = Settings(allow_private="192.168.0.0/16")
    assert permits(operator_allowance(settings), "cal.lan", "192.168.4.4")
    assert is_empty(operator_allowance(Settings(allow_private="")))


async def test_the_metadata_address_is_refused_naming_the_field_and_the_setting() -> None:
    with pytest.raises(ValidationError) as caught:
        check_target_sync(METADATA, field="base_url", allowance=parse_allowance("127.0.0.0/8"))
    error = caught.value.errors[0]
    assert error.path == "base_url" and error.rule == "private_address"
    assert "169.254.169.254" in error.message and "CALFLOW_ALLOW_PRIVATE" in error.message
    with pytest.raises(ValidationError, match="CALFLOW_ALLOW_PRIVATE"):
        await check_target(METADATA, field="to", allowance=NOTHING)


@pytest.mark.parametrize(
    "url",
    [
        "http://[::ffff:169.254.169.254]/",
        "http://10.0.0.1/",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
    ],
)
def test_other_non_public_forms_are_refused(url: str) -> None:
    with pytest.raises(ValidationError, match=r"address .*, not a public one"):
        check_target_sync(url, field="url", allowance=NOTHING)


async def test_an_allowed_address_passes_and_the_cli_grant_passes_everything() -> None:
    lan = parse_allowance("10.0.0.0/8")
    assert await check_target(" http://10.1.2.3:8080/x ", field="u", allowance=lan) == (
        "http://10.1.2.3:8080/x"
    )
    assert check_target_sync(METADATA, field="u", allowance=EVERYTHING) == METADATA
    # public addresses need no allowance
    assert check_target_sync("https://8.8.8.8/", field="u", allowance=NOTHING)


def test_a_listed_host_name_is_allowed_without_resolving_it() -> None:
    allowed = parse_allowance("cal.lan")
    assert check_target_sync("https://cal.lan/api", field="base_url", allowance=allowed)
    with pytest.raises(ValidationError, match="cannot be resolved"):
        check_target_sync("https://not-listed.invalid/", field="base_url", allowance=allowed)
    # a name that does not resolve now may be saved: the call is checked again
    check_target_sync(
        "https://not-listed.invalid/", field="base_url", allowance=allowed, unresolvable_ok=True
    )


def test_syntax_rules_stay_netguards() -> None:
    with pytest.raises(ValidationError, match="only http and https"):
        check_target_sync("file:///etc/passwd", field="base_url", allowance=EVERYTHING)
    with pytest.raises(ValidationError, match="credentials"):
        check_target_sync("https://u:p@example.com/", field="base_url", allowance=EVERYTHING)


def test_a_tenant_flag_is_honoured_only_inside_the_operators_allowance() -> None:
    lan = parse_allowance("10.0.0.0/8")
    assert tenant_allowance(False, lan) == NOTHING
    assert tenant_allowance("false", lan) == NOTHING
    assert tenant_allowance(True, lan) == lan and tenant_allowance("true", lan) == lan
    with pytest.raises(ValidationError) as caught:
        tenant_allowance(True, NOTHING)
    error = caught.value.errors[0]
    assert error.path == "allow_private" and error.rule == "operator_only"
    assert "CALFLOW_ALLOW_PRIVATE" in error.message


def test_the_refusal_says_which_of_the_flag_and_the_setting_to_change() -> None:
    lan = parse_allowance("10.0.0.0/8")
    with pytest.raises(ValidationError, match="pass allow_private=true to call it"):
        check_target_sync("http://10.0.0.5/", field="url", allowance=NOTHING, with_flag=lan)
    with pytest.raises(ValidationError, match="CALFLOW_ALLOW_PRIVATE, with allow_private=true"):
        check_target_sync(METADATA, field="url", allowance=NOTHING, with_flag=lan)


async def test_integration_fields_base_url_and_host_are_checked() -> None:
    with pytest.raises(ValidationError) as caught:
        check_fields_sync({"base_url": METADATA, "account_sid": "AC1"}, NOTHING)
    assert caught.value.errors[0].path == "base_url"
    with pytest.raises(ValidationError) as caught:
        await check_fields({"host": "169.254.169.254", "port": "25"}, NOTHING)
    assert caught.value.errors[0].path == "host"
    with pytest.raises(ValidationError, match="not a URL"):
        check_host_sync("smtp://mail.example.com", field="host", allowance=NOTHING)
    check_fields_sync({"host": "127.0.0.1"}, parse_allowance("127.0.0.1"))
    check_fields_sync({"base_url": ""}, NOTHING)  # the app's default (the real provider)
    # the http app's own allow_private asks; the operator allows nothing: refused by name
    with pytest.raises(ValidationError) as caught:
        check_fields_sync({"base_url": "", "allow_private": "true"}, NOTHING)
    assert caught.value.errors[0].path == "allow_private"
    with pytest.raises(ValidationError, match="pass allow_private=true"):
        check_fields_sync({"base_url": "http://127.0.0.1:9", "allow_private": "false"},
                          parse_allowance("127.0.0.1"))  # fmt: skip


def test_the_binding_follows_base_url_and_host_only() -> None:
    one = binding({"base_url": "https://api.twilio.com/", "account_sid": "AC1"})
    assert one == binding({"base_url": "https://api.twilio.com", "account_sid": "AC2"})
    assert one != binding({"base_url": "https://api.twilio.com.evil.example"})
    assert binding({}) != binding({"host": "smtp.example.com"})
    assert isinstance(Allowance().hosts, frozenset)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.2/", "a loopback address"),
        ("http://[::ffff:127.0.0.1]/", "a loopback address"),
        ("http://169.254.169.254/", "a link-local address"),
        ("http://192.168.1.1/", "a private address"),
        ("http://100.64.0.1/", "a shared (CGNAT) address"),
        ("http://224.0.0.1/", "a multicast address"),
        ("http://0.0.0.0/", "an unspecified address"),
    ],
)
def test_the_refusal_names_the_kind_of_address(url: str, kind: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(kind)):
        check_target_sync(url, field="url", allowance=NOTHING)


def test_a_bad_setting_is_refused_when_the_settings_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from calflow.settings import get_settings

    monkeypatch.setenv("CALFLOW_ALLOW_PRIVATE", "10.0.0.0/8,http://cal.lan")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"CALFLOW_ALLOW_PRIVATE: .*'http://cal.lan'"):
            get_settings()
    finally:
        get_settings.cache_clear()


async def test_a_name_is_judged_by_what_it_resolves_to() -> None:
    for _ in range(2):  # the second answer comes from the few-second memory of the first
        with pytest.raises(ValidationError, match=r"host 'localhost' is a loopback address"):
            await check_target("http://localhost:9/x", field="to", allowance=NOTHING)
    ok = await check_target(
        "http://localhost:9/x", field="to", allowance=parse_allowance("::1,127.0.0.1")
    )
    assert ok == "http://localhost:9/x"
