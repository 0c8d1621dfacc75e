"""Read the shell commands and links out of calflow's Markdown documentation.

The convention the docs follow (and ``test_doc_commands`` enforces):

* Every fenced block whose info string is ``sh``, ``bash`` or ``console`` is run, one
  command at a time, in order, in one shell session per page (variables assigned by
  one command are seen by the next). A ``console`` block's commands are its lines
  starting with ``$ `` (the rest is output).
* A command ends where the shell would end it: at the end of a line that is not
  continued with ``\\``, is not inside an open quote, and does not open a here-document
  that is still unterminated. Blank lines and whole-line comments separate commands.
* A command must exit 0, unless its trailing comment says ``(exit N)``, the exit code
  the page documents for it. A trailing comment saying ``port NAME`` (an action's
  output port, as in ``# port conflict: the slot is taken``) must be what it answers.
* A command that cannot run against the sandbox (``make test``, a tunnel, a PostgreSQL
  cluster) is written in the page with the visible trailing comment ``(not run by the
  docs test)``, or a whole block with that comment as its first line, and listed, with
  the reason, in ``test_doc_commands.NOT_RUN``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository's root."""

RUN_LANGS = frozenset({"sh", "bash", "console"})
"""Info strings of the fenced blocks whose commands are run."""

NOT_RUN_MARK = "(not run by the docs test)"
"""The visible comment on a command the docs test does not run."""

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_EXIT = re.compile(r"\(exit (\d+)\)")
_PORT = re.compile(r"\bport ([a-z_]+)\b")
_HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown file."""

    path: Path
    line: int
    """The line of its first content line (1-based)."""
    lang: str
    text: str


@dataclass(frozen=True)
class Command:
    """One shell command of a page, as printed."""

    path: Path
    line: int
    text: str
    expected_exit: int
    runs: bool
    """False for a command marked :data:`NOT_RUN_MARK` (or in a block so marked)."""
    mark: str = ""
    """The comment that marks it not run ('' when it runs)."""
    expected_port: str | None = None
    """The output port its comment says an action answers on."""

    @property
    def where(self) -> str:
        """``file:line`` relative to the repository."""
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def doc_files() -> list[Path]:
    """README.md and every Markdown file under docs/, in a stable order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of ``path`` (an unclosed fence runs to the end of the file)."""
    out: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m["fence"], m["info"].strip().split(" ")[0].lower()
        start, i = i + 1, i + 1
        body: list[str] = []
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        out.append(Block(path, start + 1, lang, "\n".join(body)))
        i += 1
    return out


def _complete(text: str) -> bool:
    """Whether ``text`` is a whole command: no open quote, no trailing ``\\``, every
    here-document closed."""
    if text.rstrip().endswith("\\"):
        return False
    lines = text.split("\n")
    for n, line in enumerate(lines):
        for m in _HEREDOC.finditer(line):
            if m[2] not in (rest.strip() for rest in lines[n + 1 :]):
                return False
    first_heredoc = next((n for n, ln in enumerate(lines) if _HEREDOC.search(ln)), None)
    head = "\n".join(lines if first_heredoc is None else lines[: first_heredoc + 1])
    try:
        lexer = shlex.shlex(head, posix=True, punctuation_chars=True)
        lexer.commenters = "#"
        lexer.whitespace_split = True
        list(lexer)
    except ValueError:
        return False
    return True


def _trailing_comment(text: str) -> str:
    """The ``# …`` comment of a command's last line, as far as one can tell ('' if none)."""
    last = text.rstrip().split("\n")[-1]
    idx = last.find("  #")
    return last[idx:] if idx >= 0 else (last if last.lstrip().startswith("#") else "")


def commands(block: Block) -> list[Command]:
    """The commands of a runnable block, each with the line it starts on."""
    raw = block.text.split("\n")
    if block.lang == "console":
        raw = [ln[2:] if ln.startswith("$ ") else "" for ln in raw]
    first = next((ln.strip() for ln in raw if ln.strip()), "")
    block_mark = first if first.startswith("#") and NOT_RUN_MARK in first else ""
    out: list[Command] = []
    buf: list[str] = []
    start = 0
    for n, line in enumerate(raw):
        if not buf:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            start = n
        buf.append(line)
        text = "\n".join(buf)
        if _complete(text):
            comment = _trailing_comment(text)
            m = _EXIT.search(comment)
            mark = block_mark or (comment if NOT_RUN_MARK in comment else "")
            port = _PORT.search(comment)
            out.append(
                Command(
                    block.path,
                    block.line + start,
                    text,
                    int(m[1]) if m else 0,
                    not mark,
                    mark,
                    port[1] if port else None,
                )
            )
            buf = []
    if buf:
        raise ValueError(f"{block.path}:{block.line + start}: unterminated command {buf!r}")
    return out


def page_commands(path: Path) -> list[Command]:
    """Every command of every runnable block of ``path``, in order."""
    return [c for b in blocks(path) if b.lang in RUN_LANGS for c in commands(b)]


_SAVED_AS = re.compile(r"[Ss]aved as `([^`]+)`")


def saved_files(path: Path) -> dict[str, str]:
    """The files a page shows: a fenced block whose preceding paragraph says "saved as
    `PATH`" is the content of ``PATH`` (relative to the reader's working directory)."""
    text = path.read_text(encoding="utf-8").splitlines()
    out: dict[str, str] = {}
    for block in blocks(path):
        before = " ".join(text[max(0, block.line - 5) : block.line - 2])
        m = _SAVED_AS.search(before)
        if m:
            out[m[1]] = block.text
    return out


def relative_links(path: Path) -> list[tuple[int, str]]:
    """``(line, target)`` of each link or image in ``path`` that is not a URL, an e-mail
    address or a bare anchor; code blocks and inline code are ignored."""
    out: list[tuple[int, str]] = []
    in_fence = False
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        prose = re.sub(r"`[^`]*`", "", line)
        for m in _LINK.finditer(prose):
            target = m[1] or m[2]
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue
            out.append((n, target))
    return out
