"""``calflow demo --keep-running``: the console it names shows the demo's data."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pytest

from e2e.sandbox_process import child_env

from .conftest import Shots

pytestmark = pytest.mark.slow


def _summary(out: IO[str], proc: subprocess.Popen[str], wait_s: float) -> dict[str, Any]:
    """The JSON summary the demo prints on stdout (then it keeps serving)."""
    deadline = time.monotonic() + wait_s
    text = ""
    while time.monotonic() < deadline:
        line = out.readline()
        if not line:
            if proc.poll() is not None:
                raise AssertionError(f"the demo exited {proc.returncode}")
            time.sleep(0.05)
            continue
        text += line
        if line.startswith("}"):
            found: dict[str, Any] = json.loads(text)
            return found
    raise AssertionError("the demo printed no summary in time")


@contextmanager
def demo_process(home: Path) -> Iterator[dict[str, Any]]:
    cmd = [sys.executable, "-m", "calflow.cli.main", "demo", "--home", str(home), "--fresh"]
    with (
        tempfile.TemporaryFile() as log,
        subprocess.Popen(
            [*cmd, "--json", "--keep-running"],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=child_env(),
        ) as proc,
    ):
        try:
            assert proc.stdout is not None
            yield _summary(proc.stdout, proc, 150)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def test_the_demo_opens_a_console_with_its_data(
    page: Any, shots: Shots, tmp_path: Path, chromium: str
) -> None:
    from playwright.sync_api import expect

    with demo_process(tmp_path / "demo-home") as summary:
        assert summary["ok"] is True, summary.get("missing")
        web = summary["console"]
        page.goto(web["link"])
        expect(page.get_by_test_id("workspace-name")).to_have_text("default")
        expect(page.locator("li[data-integration=demo-calcom]")).to_be_visible()
        shots(page, "demo-integrations")
        page.get_by_role("link", name="Events", exact=True).click()
        rows = page.locator("tbody tr[data-event]")
        expect(rows.first).to_be_visible()
        kinds = page.locator("tbody tr[data-event] .badge").all_inner_texts()
        assert {"created", "rescheduled", "cancelled"} <= set(kinds), kinds
        shots(page, "demo-events")
        page.get_by_role("link", name="Runs", exact=True).click()
        expect(page.locator("tbody tr[data-run]").first).to_be_visible()
        workflows = page.locator("tbody tr[data-run]").evaluate_all(
            "rows => rows.map(r => r.dataset.workflow)"
        )
        assert "sms-reminder-24h" in workflows, workflows
        expect(
            page.locator("tbody tr[data-run] .badge", has_text="cancelled").first
        ).to_be_visible()
        shots(page, "demo-runs")
