"""``GET /metrics`` (issue #17, item 5): off unless the operator sets a token, then
Prometheus' text format behind it; deliveries, events, requests, and, with
``--workers N``, the steps and runs the child workers execute (multiprocess mode)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from calflow.db.engine import reset_engines
from db_fixtures import clean_calflow_env
from e2e.serve_process import CalflowHome, poll

from .support import Served, calcom_delivery, calcom_home, serving

pytestmark = pytest.mark.slow

__all__ = ["clean_calflow_env"]

TOKEN = "metrics-token-ops-7f3a"


def _sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name{labels}`` (labels in any order), None if absent."""
    for line in text.splitlines():
        found = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if not found or found[1] != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', found[2] or ""))
        if have == labels:
            return float(found[3])
    return None


def _metrics(s: Served) -> str:
    got = httpx.get(f"{s.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/plain")
    return got.text


def test_metrics_are_off_without_the_operators_token(tmp_path: Path) -> None:
    with serving(CalflowHome(tmp_path / "home"), "--no-worker") as s:
        got = httpx.get(f"{s.url}/metrics")
    assert got.status_code == 404
    assert "CALFLOW_METRICS_TOKEN" in got.json()["error"]["message"]


def test_metrics_need_the_token_and_count_deliveries_by_outcome(tmp_path: Path) -> None:
    home, integration_id = calcom_home(tmp_path / "home")
    env = {"CALFLOW_METRICS_TOKEN": TOKEN}
    with serving(home, "--no-worker", env=env) as s:
        for wrong in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}):
            refused = httpx.get(f"{s.url}/metrics", headers=wrong)
            assert refused.status_code == 401, wrong
            assert TOKEN not in refused.text
        hook = f"{s.url}/hooks/{integration_id}"
        body, headers = calcom_delivery()
        assert httpx.post(hook, content=body, headers=headers).status_code == 200
        assert httpx.post(hook, content=body, headers=headers).status_code == 200  # a retry
        forged = {**headers, "x-cal-signature-256": "0" * 64}
        assert httpx.post(hook, content=body, headers=forged).status_code == 401
        text = _metrics(s)

    deliveries = "calflow_webhook_deliveries_total"
    assert _sample(text, deliveries, provider="cal_com", outcome="stored") == 1
    assert _sample(text, deliveries, provider="cal_com", outcome="duplicate") == 1
    assert _sample(text, deliveries, provider="cal_com", outcome="http_401") == 1
    assert _sample(text, "calflow_events_stored_total", kind="created", source="webhook") == 1
    requests = "calflow_http_requests_total"
    assert _sample(text, requests, route="hooks", method="POST", status="200") == 2
    assert _sample(text, requests, route="metrics", method="GET", status="401") == 3
    assert _sample(text, "calflow_http_request_duration_seconds_count", route="hooks") == 3
    # the counts add up workspaces and name none of their records
    assert integration_id not in text and home.store().workspace_id not in text


class _Receiver(BaseHTTPRequestHandler):
    got: list[bytes] = []

    def do_POST(self) -> None:
        _Receiver.got.append(self.rfile.read(int(self.headers["content-length"] or 0)))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def _receiver() -> Iterator[str]:
    _Receiver.got = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/notify"
    finally:
        server.shutdown()
        server.server_close()


def test_child_workers_steps_and_runs_are_counted_and_logged(tmp_path: Path) -> None:
    home, integration_id = calcom_home(tmp_path / "home")
    home.store().add("http", "web", {"allow_private": "true"}, {})
    reset_engines()
    with _receiver() as url:
        workflow = tmp_path / "notify.yaml"
        workflow.write_text(
            "name: notify\ntrigger: {kinds: [created]}\nsteps:\n"
            "  - id: hook\n    action: http.Request\n    integration: web\n"
            f"    input: {{url: '{url}', method: POST, json: {{uid: '{{{{ booking.uid }}}}'}}}}\n"
        )
        applied = home.run("workflows", "apply", str(workflow))
        assert applied.code == 0, applied
        env = {"CALFLOW_METRICS_TOKEN": TOKEN}
        with serving(home, "--workers", "1", env=env) as s:
            body, headers = calcom_delivery()
            hook = f"{s.url}/hooks/{integration_id}"
            assert httpx.post(hook, content=body, headers=headers).status_code == 200
            poll(lambda: _Receiver.got, 60, "the workflow's request")

            def counted() -> str | None:
                text = _metrics(s)
                runs = _sample(text, "calflow_runs_finished_total", status="succeeded")
                return text if runs == 1 else None

            text = poll(counted, 30, "the child worker's counts at /metrics")
            s.stop()
            log = s.stderr()

    steps = "calflow_step_outcomes_total"
    assert _sample(text, steps, app="http", action="Request", port="success") == 1
    step_calls = "calflow_step_duration_seconds_count"
    assert _sample(text, step_calls, app="http", action="Request") == 1
    assert _sample(text, "calflow_webhook_deliveries_total", provider="cal_com", outcome="stored")
    line = next(line for line in log.splitlines() if " calflow.runs " in line and "step" in line)
    assert "workflow=notify" in line and "step=hook" in line and "port=success" in line
    assert "+14155550123" not in log and "Ann Lee" not in log


def test_a_dead_letter_shows_in_the_queue_gauges(tmp_path: Path) -> None:
    home, integration_id = calcom_home(tmp_path / "home")
    home.store().add("http", "web", {}, {})  # no allow_private: a loopback URL fails
    reset_engines()
    workflow = tmp_path / "notify.yaml"
    workflow.write_text(
        "name: notify\ntrigger: {kinds: [created]}\nsteps:\n"
        "  - id: hook\n    action: http.Request\n    integration: web\n"
        "    input: {url: 'http://127.0.0.1:9/x', method: POST}\n"
    )
    assert home.run("workflows", "apply", str(workflow)).code == 0
    with serving(home, env={"CALFLOW_METRICS_TOKEN": TOKEN}) as s:  # the engine in-process
        body, headers = calcom_delivery()
        hook = f"{s.url}/hooks/{integration_id}"
        assert httpx.post(hook, content=body, headers=headers).status_code == 200

        def dead() -> str | None:
            text = _metrics(s)
            return text if _sample(text, "calflow_dead_letters") == 1 else None

        text = poll(dead, 30, "the dead letter at /metrics")

    assert _sample(text, "calflow_runs_finished_total", status="failed") == 1
    assert _sample(text, "calflow_step_outcomes_total", app="http", action="Request", port="error")
    assert _sample(text, "calflow_runs_due") == 0
    assert _sample(text, "calflow_oldest_due_run_seconds") == 0


def test_the_next_server_removes_the_metrics_directory_a_stopped_one_left(
    tmp_path: Path,
) -> None:
    home = CalflowHome(tmp_path / "home")
    with serving(home, "--workers", "1") as first:
        first.stop()  # SIGTERM: uvicorn re-raises it once stopped, so no clean-up runs
    left = json.loads((home.path / "serve.lock").read_text())["metrics_dir"]
    assert left and Path(left).name.startswith("calflow-metrics-")
    assert Path(left).is_dir()  # left behind (uvicorn 0.38 re-raises SIGTERM)

    with serving(home, "--no-worker"):
        assert not Path(left).exists()
    assert json.loads((home.path / "serve.lock").read_text())["metrics_dir"] is None
