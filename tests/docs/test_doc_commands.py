"""Every shell command of README.md and docs/ runs as printed, against the sandbox.

The convention is described in ``doc_blocks``: runnable blocks are ```` ```sh ````,
```` ```bash ```` and ```` ```console ````; a command exits 0 unless its comment says
``(exit N)``; the few commands that cannot run here carry the visible comment
``(not run by the docs test)`` and are listed in :data:`NOT_RUN` with the reason.

Each page runs in a session of its own (``DocShell``): a temporary ``CALFLOW_HOME``
and working directory, the documented ports rewritten to free ones, and the
:data:`PRELUDE` of the page first (what the page says it assumes, such as a running
sandbox and the integration ``main``); the selected pages run two at a time. Dates are
never written into the docs: a booking's start is a slot the sandbox itself offers
(``$START``, the last open start of the coming week: never near the two-hour notice or
the 60-day window's end), so the commands work whatever the day and hour, by the
sandbox's own clock.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .doc_blocks import NOT_RUN_MARK, ROOT, Block, doc_files, page_commands, saved_files
from .doc_blocks import commands as block_commands
from .doc_shell import DocShell

pytestmark = pytest.mark.slow

NOT_RUN: dict[str, str] = {
    "make demo": "installs into .venv, then runs `calflow demo` (tested in tests/cli/test_demo.py)",
    "make test": "runs the whole test suite, this test included",
    "PostgreSQL": "a PostgreSQL cluster and several machines (tests/e2e covers PostgreSQL)",
    "rolling restart": "restarts servers between steps (tests/keys covers rotation)",
}
"""Commands the docs test does not run: how each printed command starts, and why."""

SANDBOX = [
    "export CAL_API_KEY=cal_live_sandbox SAVVYCAL_TOKEN=pt_secret_sandbox",
    "export TWILIO_ACCOUNT_SID=AC00000000000000000000000000000000"
    " TWILIO_AUTH_TOKEN=sandbox_auth_token",
    'calflow sandbox --port 8787 --seed 20 --api-key "$CAL_API_KEY"'
    ' --savvycal-token "$SAVVYCAL_TOKEN" --twilio-account-sid "$TWILIO_ACCOUNT_SID"'
    ' --twilio-auth-token "$TWILIO_AUTH_TOKEN"',
]
"""The sandbox of docs/cli.md ("A session against the sandbox"), as printed there."""
MAIN = [
    *SANDBOX,
    "calflow integrations add cal_com --name main --set api_key=$CAL_API_KEY"
    " --set base_url=http://127.0.0.1:8787/calcom",
]
PRELUDE: dict[str, list[str]] = {
    "README.md": [
        *SANDBOX,
        "export CAL_BASE_URL=http://127.0.0.1:8787/calcom"
        " SAVVYCAL_BASE_URL=http://127.0.0.1:8787/savvycal",
        "export TWILIO_BASE_URL=http://127.0.0.1:8787/twilio SMTP_HOST=127.0.0.1 SMTP_PORT=2525"
        " SMTP_SECURITY=none",
    ],
    "docs/cli.md": [],
    "docs/sandbox.md": [],
    "docs/events.md": MAIN,
    "docs/workflows.md": MAIN,
    "docs/replay.md": MAIN,
    "docs/api.md": [*SANDBOX, "calflow serve --port 8000"],
    "docs/apps.md": [],
    "docs/python.md": [],
    "docs/console.md": [],
    "docs/testing.md": [],
    "docs/mcp.md": MAIN,
    "docs/configuration.md": [],
    "docs/deploy.md": [],
    "docs/security.md": [
        *SANDBOX,
        "export RECEIVER_SECRET=docs-receiver-secret",
        "calflow integrations add savvycal --name sc --set token=$SAVVYCAL_TOKEN"
        " --set base_url=http://127.0.0.1:8787/savvycal",
    ],
    "docs/providers/cal_com.md": MAIN,
    "docs/providers/savvycal.md": SANDBOX,
}
"""What each page says it assumes, run before its own commands (also doc-shaped)."""

PAGES = [p for p in doc_files() if page_commands(p)]


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _prelude(path: Path) -> list[str]:
    return PRELUDE.get(_rel(path), [])


def run_page(path: Path, workdir: Path) -> int:
    """Run the page's prelude and then its commands in a session of their own; how many
    of the page's commands ran (an ``AssertionError`` names the first that failed)."""
    shell = DocShell(workdir)
    try:
        shell.write_files(saved_files(path))
        for command in block_commands(Block(path, 0, "sh", "\n".join(_prelude(path)))):
            shell.run(command)
        ran = 0
        for command in page_commands(path):
            if command.runs:
                shell.run(command)
                ran += 1
        return ran
    finally:
        shell.close()


@pytest.fixture(scope="module")
def page_outcomes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[Path, int | Exception]:
    """The pages the session selected, run two at a time (each page is sequential; the
    pages are independent): for each, the number of commands run or what went wrong."""
    selected = [
        Path(str(item.callspec.params["path"]))
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.originalname == "test_every_command_runs_as_printed"
    ]

    workdirs = {path: tmp_path_factory.mktemp("docs") for path in selected}

    def outcome(path: Path) -> int | Exception:
        try:
            return run_page(path, workdirs[path])
        except Exception as exc:  # reported by the page's own test
            return exc

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(selected, pool.map(outcome, selected), strict=True))


@pytest.mark.parametrize("path", PAGES, ids=_rel)
def test_every_command_runs_as_printed(
    path: Path, page_outcomes: dict[Path, int | Exception]
) -> None:
    """Each runnable command of the page exits with the code (and answers on the port)
    the page gives it."""
    result = page_outcomes[path]
    if isinstance(result, Exception):
        raise result
    assert result > 0


def test_exclusions_are_few_listed_and_used() -> None:
    """A command marked not-run is in NOT_RUN, and every NOT_RUN entry is used."""
    marked = [c for p in doc_files() for c in page_commands(p) if not c.runs]
    used: set[str] = set()
    for command in marked:
        text = command.text.lstrip()
        reasons = [k for k in NOT_RUN if text.startswith(k) or k in command.mark]
        assert reasons, f"{command.where}: marked {NOT_RUN_MARK!r} but not listed in NOT_RUN"
        used.update(reasons)
    assert set(NOT_RUN) - used == set(), "NOT_RUN lists commands no page has"
    assert len(marked) <= 12


def test_every_page_with_commands_has_a_prelude_entry() -> None:
    """A new page with commands must say what it assumes (even nothing)."""
    assert sorted(_rel(p) for p in PAGES if _rel(p) not in PRELUDE) == []
