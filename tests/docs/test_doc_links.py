"""Every relative link of README.md and docs/ points at a file of the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from .doc_blocks import ROOT, doc_files, relative_links


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", doc_files(), ids=_rel)
def test_relative_links_resolve_inside_the_repository(path: Path) -> None:
    """A link's target (its anchor dropped) exists and lies inside the repository."""
    broken = []
    for line, target in relative_links(path):
        file_part = target.split("#", 1)[0]
        resolved = (path.parent / file_part).resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(f"{_rel(path)}:{line}: {target}")
    assert broken == []


def test_the_readme_links_every_reference_page() -> None:
    """The README leads to each reference page of docs/."""
    linked = {(ROOT / t.split("#", 1)[0]).resolve() for _, t in relative_links(ROOT / "README.md")}
    pages = {p.resolve() for p in doc_files() if p.parent != ROOT}
    assert sorted(_rel(p) for p in pages - linked) == []


def test_relative_links_sees_links_and_skips_code(tmp_path: Path) -> None:
    """The link finder takes Markdown links and images, not URLs, anchors or code."""
    page = tmp_path / "page.md"
    page.write_text(
        "See [a](docs/a.md#x), ![img](b.png), [web](https://x.org), [top](#top),\n"
        "`[not](code.md)`\n```sh\n[nor](this.md)\n```\n[last](../c.md)\n",
        encoding="utf-8",
    )
    assert relative_links(page) == [(1, "docs/a.md#x"), (1, "b.png"), (6, "../c.md")]
