"""How the docs test reads commands out of Markdown (``doc_blocks``)."""

from __future__ import annotations

from pathlib import Path

from .doc_blocks import NOT_RUN_MARK, Block, blocks, commands, saved_files


def _commands(text: str, lang: str = "sh") -> list[tuple[int, str, int, bool]]:
    return [
        (c.line, c.text, c.expected_exit, c.runs)
        for c in commands(Block(Path("/x.md"), 10, lang, text))
    ]


def test_a_command_ends_where_the_shell_ends_it() -> None:
    """Continued lines, open quotes and here-documents stay in one command."""
    text = (
        "# a comment\n"
        "calflow apps list   # trailing\n"
        "\n"
        "calflow actions run x y --input '{\n"
        '  "a": 1}\'\n'
        "curl -X POST \\\n"
        "     http://h/x\n"
        "cat <<EOF\n"
        "it's\n"
        "EOF\n"
    )
    assert _commands(text) == [
        (11, "calflow apps list   # trailing", 0, True),
        (13, "calflow actions run x y --input '{\n  \"a\": 1}'", 0, True),
        (15, "curl -X POST \\\n     http://h/x", 0, True),
        (17, "cat <<EOF\nit's\nEOF", 0, True),
    ]


def test_exit_codes_and_not_run_marks_come_from_the_trailing_comment() -> None:
    text = f"calflow x   # refused (exit 2)\nmake test   # slow {NOT_RUN_MARK}\n"
    assert _commands(text) == [
        (10, "calflow x   # refused (exit 2)", 2, True),
        (11, f"make test   # slow {NOT_RUN_MARK}", 0, False),
    ]


def test_a_documented_port_is_read_from_the_comment() -> None:
    text = "calflow actions run a B   # port conflict: the slot is taken\ncalflow apps list\n"
    found = [c.expected_port for c in commands(Block(Path("/x.md"), 1, "sh", text))]
    assert found == ["conflict", None]


def test_a_block_marked_on_its_first_line_is_not_run() -> None:
    text = f"# {NOT_RUN_MARK}: needs PostgreSQL\nexport A=1\ncalflow worker\n"
    assert [runs for *_, runs in _commands(text)] == [False, False]


def test_console_blocks_run_only_their_prompt_lines() -> None:
    assert _commands("$ calflow apps list\napps: 5\n", "console") == [
        (10, "calflow apps list", 0, True)
    ]


def test_blocks_and_saved_files(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text(
        "Saved as `flows/a.yaml`:\n\n```yaml\nname: a\n```\n\n```sh\nls\n```\n", encoding="utf-8"
    )
    assert [(b.lang, b.line, b.text) for b in blocks(page)] == [
        ("yaml", 4, "name: a"),
        ("sh", 8, "ls"),
    ]
    assert saved_files(page) == {"flows/a.yaml": "name: a"}
