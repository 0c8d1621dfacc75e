"""Fixtures of the browser tests: the sandbox and ``calflow serve`` as real processes, a
token, and Debian's Chromium driven by Playwright (never a downloaded browser).

Chromium is ``/usr/bin/chromium`` (``CALFLOW_CHROMIUM`` overrides it); ``make test``
installs it with apt when it is missing. Without it the browser tests skip, except under
``CI=true``, where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from db_fixtures import clean_calflow_env
from e2e.sandbox_process import SandboxProcess, sandbox_process
from e2e.serve_process import CalflowHome, serve_process

__all__ = ["clean_calflow_env"]

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

CHROMIUM = Path(os.environ.get("CALFLOW_CHROMIUM", "/usr/bin/chromium"))
API_KEY = "cal_live_console_7d1e0b"
SEED = 20


@dataclass
class Served:
    """A running ``calflow serve`` with a token of its default workspace."""

    url: str
    token: str
    sandbox: SandboxProcess
    home: Path

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """The REST API as the console's user (raises on a non-2xx answer)."""
        resp = httpx.request(
            method,
            f"{self.url}/api/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        resp.raise_for_status()
        return resp.json()


@pytest.fixture(scope="module")
def chromium() -> str:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is not installed (`make test` installs it: apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return str(CHROMIUM)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The sandbox and ``calflow serve`` (receiver, API, console, workflow engine)."""
    home = tmp_path_factory.mktemp("calflow-home")
    with (
        sandbox_process(API_KEY, seed=SEED) as sandbox,
        serve_process({"CALFLOW_HOME": str(home)}) as server,
    ):
        created = CalflowHome(home).json("tokens", "create", "--workspace", "default")
        yield Served(server.url, str(created["secret"]), sandbox, home)


@dataclass
class Shots:
    """Screenshots of a test, numbered in the order taken, under its output directory."""

    directory: Path
    taken: list[Path] = field(default_factory=list)

    def __call__(self, page: Any, name: str, *, full_page: bool = False) -> Path:
        path = self.directory / f"{len(self.taken) + 1:02d}-{name}.png"
        if not full_page:
            page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(path), full_page=full_page)
        self.taken.append(path)
        return path


@pytest.fixture
def shots(tmp_path: Path) -> Shots:
    directory = tmp_path / "screenshots"
    directory.mkdir()
    return Shots(directory)


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        found = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            yield found
        finally:
            found.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab (its own sessionStorage) in UTC; uncaught page errors fail the test."""
    context = browser.new_context(
        viewport={"width": 1400, "height": 900}, timezone_id="UTC", locale="en-GB"
    )
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
    finally:
        context.close()
    assert errors == [], f"the console threw: {errors}"
