"""``calflow serve``'s logs (issue #17, item 4): ``CALFLOW_LOG_LEVEL`` and
``--log-format text|json``, one line per request with the workspace when known, and no
secret, token, body or phone number in them, even at debug."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from calflow.db.engine import reset_engines
from calflow.workspaces import TokenStore
from cli.conftest import calflow_command
from db_fixtures import clean_calflow_env
from e2e.sandbox_process import child_env, free_port
from e2e.serve_process import CalflowHome

from .support import API_KEY, WEBHOOK_SECRET, calcom_delivery, calcom_home, serving

pytestmark = pytest.mark.slow

__all__ = ["clean_calflow_env"]

PHONE = "+14155550188"


def _serve_fails(home: CalflowHome, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*calflow_command(), "serve", "--port", str(free_port()), "--no-worker", *args],
        env=child_env(**home.env(), **env, COLUMNS="200", NO_COLOR="1"),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_an_unknown_log_level_is_refused_listing_the_allowed_ones(tmp_path: Path) -> None:
    got = _serve_fails(CalflowHome(tmp_path / "home"), CALFLOW_LOG_LEVEL="verbose")
    assert got.returncode == 2, got
    assert "CALFLOW_LOG_LEVEL" in got.stderr
    for level in ("debug", "info", "warning", "error"):
        assert level in got.stderr
    assert "Traceback" not in got.stderr
    assert "calflow serving" not in got.stdout


def test_an_unknown_log_format_is_refused_listing_the_allowed_ones(tmp_path: Path) -> None:
    got = _serve_fails(CalflowHome(tmp_path / "home"), "--log-format", "xml")
    assert got.returncode == 2, got
    env = _serve_fails(CalflowHome(tmp_path / "home"), CALFLOW_LOG_FORMAT="xml")
    assert env.returncode == 2 and "CALFLOW_LOG_FORMAT" in env.stderr, env
    assert "--log-format" in got.stderr and "'text'" in got.stderr
    assert "'json'" in got.stderr and "Traceback" not in got.stderr


def test_the_log_level_is_not_case_sensitive(tmp_path: Path) -> None:
    with serving(
        CalflowHome(tmp_path / "home"), "--no-worker", env={"CALFLOW_LOG_LEVEL": "WARNING"}
    ) as s:
        assert httpx.get(f"{s.url}/healthz").status_code == 200
        s.stop()
        assert "calflow.access" not in s.stderr()  # info lines are below warning


def _lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.strip():
            out.append(json.loads(line))  # every line is one JSON object
    return out


def test_json_lines_per_request_with_the_workspace_and_never_a_secret(tmp_path: Path) -> None:
    home, integration_id = calcom_home(tmp_path / "home")
    store = home.store()
    _, token = TokenStore(store.engine).create(store.workspace_id, "ops")
    reset_engines()
    env = {"CALFLOW_LOG_LEVEL": "debug"}
    with serving(home, "--no-worker", "--log-format", "json", env=env) as s:
        assert httpx.get(f"{s.url}/healthz?token=query-secret-1").status_code == 200
        body, headers = calcom_delivery(PHONE)
        hook = httpx.post(f"{s.url}/hooks/{integration_id}", content=body, headers=headers)
        assert hook.status_code == 200, hook.text
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{s.url}/api/v1/events", headers=auth).status_code == 200
        bad = {"Authorization": "Bearer cfk_not_a_token_xyz"}
        assert httpx.get(f"{s.url}/api/v1/events", headers=bad).status_code == 401
        s.stop()
        text = s.stderr()

    lines = _lines(text)
    access = [line for line in lines if line["logger"] == "calflow.access"]
    by_path = {(line["method"], line["path"], line["status"]): line for line in access}
    health = by_path[("GET", "/healthz", 200)]
    assert health["level"] == "info" and isinstance(health["ms"], float)
    assert "workspace" not in health
    assert by_path[("POST", f"/hooks/{integration_id}", 200)]["workspace"] == store.workspace_id
    assert by_path[("GET", "/api/v1/events", 200)]["workspace"] == store.workspace_id
    assert "workspace" not in by_path[("GET", "/api/v1/events", 401)]
    delivery = next(line for line in lines if line["logger"] == "calflow.hooks")
    assert delivery["outcome"] == "stored" and delivery["kind"] == "created"
    assert delivery["level"] == "info"  # one line per delivery at the default level
    refused = [line for line in lines if line["logger"] == "calflow.api"]
    assert [(r["method"], r["path"], r["status"], r["code"]) for r in refused] == [
        ("GET", "/api/v1/events", 401, "UNAUTHENTICATED")
    ]
    signature = headers["x-cal-signature-256"]
    secrets = [WEBHOOK_SECRET, API_KEY, token, "cfk_not_a_token_xyz", "query-secret-1"]
    personal = [PHONE, PHONE[1:], "Ann Lee", "ann@example.com", signature]
    for secret in secrets + personal:
        assert secret not in text, secret


def test_text_lines_by_default(tmp_path: Path) -> None:
    with serving(CalflowHome(tmp_path / "home"), "--no-worker") as s:
        assert httpx.get(f"{s.url}/healthz").status_code == 200
        s.stop()
        text = s.stderr()
    line = next(line for line in text.splitlines() if " calflow.access " in line)
    assert " INFO calflow.access GET /healthz 200 " in line
    assert "status=200" in line and "path=/healthz" in line
