"""Fixtures of the CLI tests: the real ``calflow`` command in a subprocess, a sandbox process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from calflow.db.engine import reset_engines
from calflow.integrations import IntegrationStore
from calflow.settings import Settings
from db_fixtures import clean_calflow_env
from e2e.sandbox_process import SandboxProcess, child_env, sandbox_process

__all__ = ["clean_calflow_env"]

SECRET = "cal_live_CLI_SECRET_5d0c8e2a71f4"
"""The sandbox's API key, given to ``integrations add``: it must never be shown or stored."""


def calflow_command() -> list[str]:
    """The installed ``calflow`` console script beside this Python, else ``-m``."""
    script = Path(sys.executable).with_name("calflow")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "calflow.cli.main"]


@dataclass(frozen=True)
class Result:
    """One finished ``calflow`` run."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def err(self) -> str:
        """stderr with Rich's line wrapping undone (whitespace runs as one space)."""
        return " ".join(self.stderr.split())

    def __str__(self) -> str:
        return f"calflow {' '.join(self.args)} -> {self.code}\n{self.stdout}\n{self.stderr}"


def run_calflow(
    home: Path,
    *args: str,
    stdin: str | None = None,
    timeout: float = 60,
    env: Mapping[str, str] | None = None,
) -> Result:
    """Run ``calflow ARGS`` with ``CALFLOW_HOME=home`` and no other ``CALFLOW_*`` variable
    than those in ``env`` (which may also change ``COLUMNS``).

    Every run is checked for what must never happen: a traceback, or the secret shown.
    """
    proc = subprocess.run(
        [*calflow_command(), *args],
        env=child_env(
            **{"CALFLOW_HOME": str(home), "COLUMNS": "100", "NO_COLOR": "1", **(env or {})}
        ),
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    result = Result(tuple(args), proc.returncode, proc.stdout, proc.stderr)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, str(result)
    assert SECRET not in output, str(result)
    return result


def run_many(home: Path, *commands: Sequence[str]) -> list[Result]:
    """Independent ``calflow`` runs at once (each process mostly spends its time importing)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda args: run_calflow(home, *args), commands))


@dataclass(frozen=True)
class Home:
    """A ``CALFLOW_HOME`` with the integration ``main`` pointing at the sandbox."""

    path: Path
    sandbox: SandboxProcess
    added: Result

    def run(self, *args: str, stdin: str | None = None, timeout: float = 60) -> Result:
        return run_calflow(self.path, *args, stdin=stdin, timeout=timeout)

    def run_many(self, *commands: Sequence[str]) -> list[Result]:
        return run_many(self.path, *commands)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxProcess]:
    """A sandbox process accepting ``SECRET`` as its API key."""
    with sandbox_process(SECRET, seed=10) as sb:
        yield sb


def make_home(path: Path, sandbox: SandboxProcess) -> Home:
    path.mkdir(parents=True, exist_ok=True)
    added = run_calflow(
        path,
        "integrations",
        "add",
        "cal_com",
        "--name",
        "main",
        "--set",
        f"api_key={SECRET}",
        "--set",
        f"base_url={sandbox.calcom}",
        "--json",
    )
    assert added.code == 0, str(added)
    return Home(path, sandbox, added)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, sandbox: SandboxProcess) -> Home:
    """A home shared by the tests of a module that do not change its integrations."""
    return make_home(tmp_path_factory.mktemp("calflow-home"), sandbox)


def store_add(home: Path, name: str, config: dict[str, Any], secrets: dict[str, str]) -> None:
    """Add an integration in-process (as ``integrations add`` would, minus a slow start)."""
    try:
        IntegrationStore.default(Settings(home=home)).add("cal_com", name, config, secrets)
    finally:
        reset_engines()


def store_names(home: Path) -> list[str]:
    """The names of the integrations stored under ``home``, read in-process."""
    try:
        return [i.name for i in IntegrationStore.default(Settings(home=home)).list()]
    finally:
        reset_engines()


@pytest.fixture
def fresh_home(tmp_path: Path, sandbox: SandboxProcess) -> Home:
    """A home of one test's own with ``main`` (for tests that rotate keys or remove it)."""
    path = tmp_path / "home"
    path.mkdir()
    store_add(path, "main", {"base_url": sandbox.calcom}, {"api_key": SECRET})
    return Home(path, sandbox, Result((), 0, "", ""))
