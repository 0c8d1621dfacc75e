"""``calflow``'s commands load when they run: ``--help`` imports none of the engine, the
listing's help is each command's own, and a mistyped command suggests the closest."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from calflow.cli.lazy import COMMANDS, load

HEAVY = ("sqlalchemy", "httpx", "aiohttp", "mcp", "dbos", "fastapi", "jsonschema", "jinja2")


def _first_paragraph(text: str | None) -> str:
    return " ".join((text or "").split("\n\n")[0].split())


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_listed_help_is_the_commands_own(name: str) -> None:
    command = load(name)
    assert command.name == name
    assert COMMANDS[name].help == _first_paragraph(command.help)
    assert not {"install_completion", "show_completion"} & {p.name for p in command.params}


@pytest.mark.parametrize("argv", [["--help"], ["--version"]])
def test_help_and_version_import_none_of_the_engine(argv: list[str]) -> None:
    script = (
        "import sys\nfrom calflow.cli.main import main\nimport contextlib, io\n"
        f"with contextlib.redirect_stdout(io.StringIO()): main({argv!r})\n"
        f"print(__import__('json').dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert json.loads(out.stdout.splitlines()[-1]) == []


def test_the_listing_names_every_command() -> None:
    out = subprocess.run([sys.executable, "-m", "calflow.cli.main", "--help"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    rows = [line for line in out.stdout.splitlines() if line.startswith("│ ") and line[2] != " "]
    words = [row.split() for row in rows]
    listed = [w[1] for w in words if len(w) > 2 and w[1] in COMMANDS]
    assert listed == list(COMMANDS)


def test_a_mistyped_command_suggests_the_closest() -> None:
    out = subprocess.run([sys.executable, "-m", "calflow.cli.main", "integratons", "list"],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 2
    assert "No such command 'integratons'. Did you mean 'integrations'?" in out.stderr
