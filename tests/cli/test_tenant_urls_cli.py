"""``calflow integrations``: a base_url or host that is not public is refused (exit 2)
unless the operator's ``CALFLOW_ALLOW_PRIVATE`` allows it, and changing it removes the
secrets not given again, saying so."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from e2e.sandbox_process import child_env

from .conftest import SECRET, Result, calflow_command, run_calflow

pytestmark = pytest.mark.slow

SID = "AC" + "1" * 32


def twilio(home: Path, base_url: str, *extra: str) -> Result:
    return run_calflow(
        home, "integrations", "add", "twilio", "--name", "sms", "--set", f"base_url={base_url}",
        "--set", f"account_sid={SID}", "--set", f"auth_token={SECRET}", *extra,
    )  # fmt: skip


def test_the_metadata_address_is_refused_naming_the_field_and_the_setting(tmp_path: Path) -> None:
    refused = twilio(tmp_path, "http://169.254.169.254/latest")
    assert refused.code == 2, str(refused)
    for needle in ("base_url", "link-local address", "CALFLOW_ALLOW_PRIVATE"):
        assert needle in refused.err, str(refused)
    mail = run_calflow(
        tmp_path, "integrations", "add", "email", "--name", "m", "--set", "host=10.0.0.25"
    )
    assert mail.code == 2 and "host" in mail.err and "private address" in mail.err, str(mail)
    listed = run_calflow(tmp_path, "integrations", "list", "--json")
    assert listed.json == []


def test_a_private_target_needs_the_operators_setting(tmp_path: Path) -> None:
    def add(allow: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*calflow_command(), "integrations", "add", "cal_com", "--name", "lan",
             "--set", "api_key=k", "--set", "base_url=http://192.168.7.20/api"],
            env=child_env(CALFLOW_HOME=str(tmp_path), CALFLOW_ALLOW_PRIVATE=allow, NO_COLOR="1"),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    closed = add("")
    assert closed.returncode == 2 and "CALFLOW_ALLOW_PRIVATE" in closed.stderr, closed.stderr
    assert "Traceback" not in closed.stderr
    opened = add("192.168.7.0/24")
    assert opened.returncode == 0, opened.stderr


def test_changing_base_url_removes_the_secrets_and_says_so(tmp_path: Path) -> None:
    assert twilio(tmp_path, "http://127.0.0.1:9").code == 0
    moved = run_calflow(
        tmp_path, "integrations", "update", "sms", "--set", "base_url=http://127.0.0.1:10"
    )
    assert moved.code == 0, str(moved)
    assert "removed secrets auth_token" in moved.stdout
    shown = run_calflow(tmp_path, "integrations", "show", "sms", "--json").json
    assert shown["secrets"] == {} and shown["config"]["base_url"] == "http://127.0.0.1:10"
    again = run_calflow(
        tmp_path, "integrations", "update", "sms", "--json",
        "--set", "base_url=http://127.0.0.1:11", "--set", f"auth_token={SECRET}",
    )  # fmt: skip
    assert again.code == 0, str(again)
    assert again.json["cleared_secrets"] == [] and list(again.json["secrets"]) == ["auth_token"]
    same = run_calflow(tmp_path, "integrations", "update", "sms", "--set", f"account_sid={SID}")
    assert same.code == 0 and "removed" not in same.stdout
    refused = run_calflow(
        tmp_path, "integrations", "update", "sms", "--set", "base_url=http://169.254.169.254"
    )
    assert refused.code == 2 and "link-local" in refused.err, str(refused)
    kept = run_calflow(tmp_path, "integrations", "show", "sms", "--json").json
    assert kept["config"]["base_url"] == "http://127.0.0.1:11" and kept["secrets"]
