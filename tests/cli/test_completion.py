"""Shell completion: ``calflow --install-completion`` / ``--show-completion``, and the
completions the shell then asks calflow for."""

from __future__ import annotations

from pathlib import Path

from .conftest import run_calflow, run_many


def test_help_offers_completion_and_still_works(tmp_path: Path) -> None:
    long_help, short_help, script = run_many(
        tmp_path, ("--help",), ("-h",), ("--show-completion", "bash")
    )
    assert long_help.code == short_help.code == 0, str(long_help)
    assert long_help.stdout == short_help.stdout
    for fragment in ("--install-completion", "--show-completion", "--version", "integrations"):
        assert fragment in long_help.stdout, long_help.stdout
    assert script.code == 0, str(script)
    assert "_CALFLOW_COMPLETE=complete_bash" in script.stdout
    assert "complete " in script.stdout  # the line that registers it with bash


def test_the_shell_gets_commands_and_options_completed(tmp_path: Path) -> None:
    def complete(words: str, index: int) -> list[str]:
        got = run_calflow(
            tmp_path,
            env={"_CALFLOW_COMPLETE": "complete_bash", "COMP_WORDS": words,
                 "COMP_CWORD": str(index)},
        )  # fmt: skip
        assert got.code == 0, str(got)
        return got.stdout.split()

    assert complete("calflow integ", 1) == ["integrations"]
    assert complete("calflow integrations li", 2) == ["list"]
    assert "--workspace" in complete("calflow events list --w", 3)
