"""Every integration field is checked when it is set (``integrations add/update --set``):
enums, URLs, phone numbers, countries, ports, booleans, numbers, time zones."""

from __future__ import annotations

from pathlib import Path

import pytest

from calflow.errors import ValidationError
from calflow.flowapp import App, CredentialField
from calflow.flowapp.values import problem

from .conftest import Result, run_calflow, run_many

pytestmark = pytest.mark.slow

TWILIO = ["--set", "account_sid=AC123", "--set", "auth_token=tw-secret-not-shown"]


def refused(result: Result, field: str, *fragments: str) -> None:
    assert result.code == 2, str(result)
    assert f"{field}:" in result.err, str(result)
    for fragment in fragments:
        assert fragment in result.err, str(result)


def test_add_refuses_a_bad_value_naming_the_field_and_what_it_takes(tmp_path: Path) -> None:
    add = ("integrations", "add")
    security, port, flag, sender, region, callback, url = run_many(
        tmp_path,
        (*add, "email", "--name", "m1", "--set", "host=127.0.0.1", "--set", "security=plain"),
        (*add, "email", "--name", "m2", "--set", "host=127.0.0.1", "--set", "port=70000"),
        (*add, "email", "--name", "m3", "--set", "host=127.0.0.1", "--set", "verify_tls=maybe"),
        (*add, "twilio", "--name", "t1", *TWILIO, "--set", "from_number=+1"),
        (*add, "twilio", "--name", "t2", *TWILIO, "--set", "default_phone_region=XX"),
        (*add, "twilio", "--name", "t3", *TWILIO, "--set", "status_callback=ftp://x.example"),
        (*add, "cal_com", "--name", "c1", "--set", "api_key=k", "--set", "base_url=not a url"),
    )
    refused(security, "security", "must be one of: starttls, ssl, none", "'plain'")
    refused(port, "port", "1 to 65535")
    refused(flag, "verify_tls", "true or false")
    refused(sender, "from_number", "E.164", "short code", "alphanumeric")
    refused(region, "default_phone_region", "two-letter country")
    refused(callback, "status_callback", "http or https")
    refused(url, "base_url", "http or https")
    assert "tw-secret-not-shown" not in sender.stdout + sender.stderr
    listed = run_calflow(tmp_path, "integrations", "list", "--json")
    assert listed.json == []  # nothing refused was saved


def test_good_values_are_accepted_and_update_checks_too(tmp_path: Path) -> None:
    added = run_calflow(
        tmp_path, "integrations", "add", "twilio", "--name", "sms", *TWILIO,
        "--set", "from_number=+15005550006", "--set", "default_phone_region=fr",
        "--set", "status_callback=https://hooks.example.com/twilio", "--json",
    )  # fmt: skip
    assert added.code == 0, str(added)
    update = ("integrations", "update", "sms")
    short, alpha, bad, case = run_many(
        tmp_path,
        (*update, "--set", "from_number=12345"),
        (*update, "--set", "from_number=Clinic"),
        (*update, "--set", "from_number=not a sender!"),
        (*update, "--set", "default_phone_region=zz"),
    )
    assert short.code == 0 and alpha.code == 0, f"{short}\n{alpha}"
    refused(bad, "from_number", "E.164")
    refused(case, "default_phone_region", "two-letter")
    shown = run_calflow(tmp_path, "integrations", "show", "sms", "--json")
    # the accepted updates ran at once (either may be last); the refused ones changed nothing
    assert shown.json["config"]["from_number"] in {"12345", "Clinic"}
    assert shown.json["config"]["default_phone_region"] == "fr"
    mail = run_calflow(
        tmp_path, "integrations", "add", "email", "--name", "mail", "--set", "host=127.0.0.1",
        "--set", "port=587", "--set", "security=ssl", "--set", "verify_tls=false",
        "--set", "timeout_s=2.5",
    )  # fmt: skip
    assert mail.code == 0, str(mail)
    near = run_calflow(tmp_path, "integrations", "update", "mail", "--set", "security=SSL")
    refused(near, "security", "did you mean 'ssl'?")


ZONED = App(
    key="zoned",
    name="Zoned",
    description="A fixture app with a field of each kind.",
    credential_fields=(
        CredentialField("zone", "Time zone", kind="time_zone"),
        CredentialField("phone", "Phone", kind="phone"),
        CredentialField("count", "Count", kind="integer"),
        CredentialField("token", "Token", secret=True, kind="integer"),
    ),
)


def test_time_zones_and_phones_are_checked_by_kind() -> None:
    ZONED.check_settings({"zone": "Europe/Paris", "phone": "+33612345678", "count": "3"})
    with pytest.raises(ValidationError) as caught:
        ZONED.check_settings({"zone": "Europe/Pariss", "phone": "0612345678", "count": "3.5"})
    errors = {e.path: e.message for e in caught.value.errors}
    assert "IANA time zone" in errors["zone"] and "did you mean 'Europe/Paris'?" in errors["zone"]
    assert "E.164" in errors["phone"]
    assert "whole number" in errors["count"]
    with pytest.raises(ValidationError) as secret:
        ZONED.check_settings({"token": "s3cr3t-value"})
    assert "s3cr3t-value" not in str([e.message for e in secret.value.errors])  # never echoed
    assert problem("boolean", True) is None and problem("port", 0) is not None
    assert problem("number", "inf") is not None and problem("number", "-1") is not None


def test_an_unknown_kind_is_a_declaration_problem() -> None:
    broken = App(
        key="broken",
        name="Broken",
        description="",
        credential_fields=(CredentialField("x", "X", kind="colour"),),
    )
    assert any("unknown kind 'colour'" in p for p in broken.problems())
