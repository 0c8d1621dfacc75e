"""``calflow doctor`` (issue #17, item 3) against a healthy home and broken ones: every
line ok/warn/fail with its fix, exit 1 only when something failed, ``--json``."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy.orm import Session

from calflow.db.engine import reset_engines
from calflow.db.models import RunRow
from calflow.db.types import utcnow
from cli.conftest import calflow_command
from db_fixtures import clean_calflow_env
from e2e.sandbox_process import child_env, free_port, sandbox_process
from e2e.serve_process import CalflowHome

from .support import calcom_home, serving

pytestmark = pytest.mark.slow

__all__ = ["clean_calflow_env"]


def _doctor(home: CalflowHome, *args: str, **env: str) -> tuple[int, dict[str, Any]]:
    """``calflow doctor --json ARGS`` with ``env`` on top of the home's; (exit, report)."""
    proc = subprocess.run(
        [*calflow_command(), "doctor", "--json", *args],
        env=child_env(**home.env(), **env), capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def _by_name(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in report["checks"]}


def test_a_healthy_home_is_all_ok_and_names_the_running_server(tmp_path: Path) -> None:
    home, _ = calcom_home(tmp_path / "home")
    with serving(home, "--no-worker") as s:
        code, report = _doctor(home)
        pid = s.proc.pid

    assert code == 0 and report["ok"] is True, report
    checks = _by_name(report)
    assert {c["status"] for c in report["checks"]} == {"ok"}, report
    for name in ("python", "settings", "home", "home modes", "database", "migrations",
                 "sqlite journal", "keys", "integration cal", "secrets", "server"):  # fmt: skip
        assert name in checks, name
    assert f"pid {pid}" in checks["server"]["message"] and s.url in checks["server"]["message"]
    assert "wal" in checks["sqlite journal"]["message"]


def test_text_output_is_one_line_per_check(tmp_path: Path) -> None:
    home, _ = calcom_home(tmp_path / "home")
    result = home.run("doctor")
    assert result.code == 0, result
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("ok   python")
    assert all(line.split()[0] in ("ok", "warn", "fail") for line in lines), lines


def test_a_broken_home_fails_naming_each_problem_and_its_fix(tmp_path: Path) -> None:
    home, _ = calcom_home(tmp_path / "home")
    store = home.store()
    store.add("cal_com", "nosecret", {"base_url": "http://cal.invalid"}, {"api_key": "k"})
    # saved while the operator allowed loopback, which it no longer does
    store.add("http", "local", {"base_url": "http://127.0.0.1:9", "allow_private": "true"}, {})
    reset_engines()
    (home.path / "calflow.db").chmod(0o644)
    key_file = home.path / "secret.key"
    key_file.write_text(Fernet.generate_key().decode() + "\n")  # the old key is lost

    code, report = _doctor(home, CALFLOW_ALLOW_PRIVATE="")
    checks = _by_name(report)

    assert code == 1 and report["ok"] is False
    assert checks["home modes"]["status"] == "warn"
    assert f"chmod 600 {home.path / 'calflow.db'}" in checks["home modes"]["fix"]
    broken = checks["integration cal"]
    assert broken["status"] == "fail" and "decrypt" in broken["message"]
    assert "CALFLOW_SECRET_KEYS" in broken["fix"]
    assert "secrets" not in checks  # not every integration's secrets decrypt


def test_targets_and_webhook_secrets_are_checked(tmp_path: Path) -> None:
    home, _ = calcom_home(tmp_path / "home")
    store = home.store()
    store.add("cal_com", "nosecret", {"base_url": "http://cal.invalid"}, {"api_key": "k"})
    store.add("http", "local", {"base_url": "http://127.0.0.1:9", "allow_private": "true"}, {})
    reset_engines()

    code, report = _doctor(home, CALFLOW_ALLOW_PRIVATE="")
    checks = _by_name(report)

    assert code == 1
    local = checks["integration local"]
    assert local["status"] == "fail" and "CALFLOW_ALLOW_PRIVATE" in local["fix"]
    unsigned = checks["integration nosecret"]
    assert unsigned["status"] == "warn" and "401" in unsigned["message"]
    assert unsigned["fix"].startswith("calflow webhooks register cal_com -i nosecret")
    assert checks["integration cal"]["status"] == "ok"


def test_settings_that_do_not_parse_fail_and_name_the_variable(tmp_path: Path) -> None:
    home = CalflowHome(tmp_path / "home")
    code, report = _doctor(home, CALFLOW_ALLOW_PRIVATE="10.0.0.0/33", CALFLOW_LOG_LEVEL="loud")
    checks = _by_name(report)
    assert code == 1
    assert checks["allow_private"]["status"] == "fail"
    assert checks["settings"]["status"] == "fail"
    assert "CALFLOW_LOG_LEVEL" in checks["settings"]["message"]


def test_online_runs_each_integrations_connection_test(tmp_path: Path) -> None:
    home = CalflowHome(tmp_path / "home")
    with sandbox_process("cal_live_doctor_1") as sandbox:
        store = home.store()
        store.add("cal_com", "good", {"base_url": sandbox.calcom},
                  {"api_key": "cal_live_doctor_1", "webhook_secret": "s"})  # fmt: skip
        store.add("cal_com", "badkey", {"base_url": sandbox.calcom},
                  {"api_key": "cal_live_wrong", "webhook_secret": "s"})  # fmt: skip
        store.add("cal_com", "down", {"base_url": f"http://127.0.0.1:{free_port()}"},
                  {"api_key": "k", "webhook_secret": "s"})  # fmt: skip
        reset_engines()
        code, report = _doctor(home, "--online")
    checks = _by_name(report)

    assert code == 1
    assert checks["integration good"]["status"] == "ok", checks["integration good"]
    assert "GetAllBookings answered" in checks["integration good"]["message"]
    assert checks["integration badkey"]["status"] == "fail"
    assert checks["integration down"]["status"] == "fail"
    assert "cal_live_wrong" not in str(report)


def test_doctor_changes_nothing_in_a_home_it_checks(tmp_path: Path) -> None:
    never_used = CalflowHome(tmp_path / "new")
    code, report = _doctor(never_used)
    assert code == 0 and not never_used.path.exists()
    assert _by_name(report)["home"]["status"] == "warn"

    home, _ = calcom_home(tmp_path / "home")
    (home.path / "secret.key").unlink()
    before = sorted(p.name for p in home.path.iterdir())
    code, report = _doctor(home)
    assert sorted(p.name for p in home.path.iterdir()) == before  # no key, no lock made
    keys = _by_name(report)["keys"]
    assert code == 1 and keys["status"] == "fail" and "secret.key" in keys["message"]


def test_a_backlog_no_engine_takes_and_dead_letters_are_warned_of(tmp_path: Path) -> None:
    home, _ = calcom_home(tmp_path / "home")
    store = home.store()
    base = {"workflow_id": "wf_1", "workflow_name": "remind", "event_id": "evt_1",
            "provider": "cal_com", "workspace_id": store.workspace_id}  # fmt: skip
    with Session(store.engine) as session:
        session.add(RunRow(id="run_late", status="waiting",
                           next_due_at=utcnow() - timedelta(hours=2), **base))  # fmt: skip
        session.add(RunRow(id="run_dead", status="failed", dead=1, **base))
        session.commit()
    reset_engines()
    code, report = _doctor(home)

    assert code == 0, report  # warnings, nothing failed
    checks = _by_name(report)
    engine, dead = checks["engine"], checks["dead letters"]
    assert engine["status"] == "warn" and "1 run(s) due" in engine["message"]
    assert "calflow serve" in engine["fix"]
    assert dead["status"] == "warn" and dead["message"].startswith("1 failed run")
    assert "calflow runs retry" in dead["fix"]
