"""Where an engine process spends its time: a summary of a py-spy ``raw`` profile.

    python bench/workflows_profile.py OUT.raw [--top 25]

``bench/workflows.py --profile DIR`` records each engine process with
``py-spy record -f raw -t --nolineno --nonblocking --gil`` (by default only the thread
holding the GIL is sampled: where the process's Python CPU goes; with
``--profile-mode all`` every thread py-spy deems active, which on this machine includes
threads blocked in psycopg's socket wait) and summarizes each file with
:func:`summarize`:

- ``threads``: share of the samples per thread name (the event loop is ``MainThread``;
  ``asyncio_N`` are ``asyncio.to_thread`` workers; DBOS has its own threads);
- ``self_by_package``: share per package of the innermost frame (where the CPU was
  when sampled): ``sqlalchemy``/``psycopg`` is SQL execution and commits;
- ``inclusive``: share of samples with at least one frame in each of a few groups
  (DBOS, SQL, the workflow code, the receiver, the HTTP client, templates), and of
  ``dbos ∩ sql`` (SQL that DBOS runs for its checkpoints and queues);
- ``top_inclusive``: functions of calflow and DBOS by inclusive share;
- ``top_self``: functions by self share.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*)\)$")
GROUPS: dict[str, tuple[str, ...]] = {
    "dbos": ("dbos/",),
    "sql": ("sqlalchemy/", "psycopg/", "psycopg_pool/", "sqlite3/"),
    "calflow_workflows": ("calflow/workflows/",),
    "calflow_receiver": ("calflow/server/", "calflow/events/", "starlette/", "uvicorn/"),
    "http_client": ("httpx/", "httpcore/", "h11/", "calflow/flowapp/http", "calflow/apps/"),
    "templates": ("jinja2/", "calflow/workflows/templates.py"),
    "json": ("json/",),
}


def _frame(text: str) -> tuple[str, str]:
    m = _FRAME.match(text)
    return (m["func"], m["file"]) if m else (text, "")


def _package(path: str) -> str:
    if not path:
        return "?"
    if path.startswith("<"):
        return path
    head = path.split("/", 1)[0]
    return head.removesuffix(".py")


def parse(raw: str) -> list[tuple[str, list[tuple[str, str]], int]]:
    """``(thread name, frames outermost first, count)`` of each line of a raw profile."""
    out = []
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        parts = stack.split(";")
        thread = parts[0].split(": ", 1)[-1] if parts[0].startswith("thread (") else "?"
        frames = [_frame(p) for p in (parts[1:] if parts[0].startswith("thread (") else parts)]
        out.append((thread, frames, int(count)))
    return out


def _thread_kind(name: str) -> str:
    """Thread names without their serial numbers (``asyncio_12`` -> ``asyncio_*``)."""
    return re.sub(r"_\d+$", "_*", re.sub(r"-\d+", "-*", name))


def summarize(path: Path, top: int = 25) -> dict[str, Any]:
    samples = parse(path.read_text(errors="replace"))
    total = sum(c for _, _, c in samples)
    if not total:
        return {"samples": 0}
    threads: Counter[str] = Counter()
    self_pkg: Counter[str] = Counter()
    self_fn: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    incl_fn: Counter[str] = Counter()
    for thread, frames, count in samples:
        threads[_thread_kind(thread)] += count
        if frames:
            func, file = frames[-1]
            self_pkg[_package(file)] += count
            self_fn[f"{func} ({file})"] += count
        hit = {g for g, prefixes in GROUPS.items() for _, f in frames if f.startswith(prefixes)}
        for g in hit:
            incl[g] += count
        if {"dbos", "sql"} <= hit:
            incl["dbos∩sql"] += count
        seen = {f"{fn} ({f})" for fn, f in frames if f.startswith(("calflow/", "dbos/"))}
        for key in seen:
            incl_fn[key] += count

    def share(counter: Counter[str], n: int | None = None) -> dict[str, float]:
        return {k: round(v / total, 3) for k, v in counter.most_common(n)}

    return {
        "samples": total,
        "threads": share(threads, 12),
        "self_by_package": share(self_pkg, 15),
        "inclusive": share(incl),
        "top_inclusive": share(incl_fn, top),
        "top_self": share(self_fn, top),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw", type=Path, nargs="+")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for path in args.raw:
        print(json.dumps({"file": str(path), **summarize(path, args.top)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
