"""Run a ``calflow`` command counting every SQL statement and commit, by who issued it.

    WF_SQLCOUNT_OUT=FILE python bench/workflows_sqlcount.py serve|worker [options]

A diagnostic for ``bench/workflows.py --sql-count``: the same command as
``python -m calflow.cli.main``, with SQLAlchemy engine events on every engine of the
process (calflow's and DBOS's system database alike). Each statement is counted, and
timed (cursor execute), under the innermost calflow or DBOS function that issued it,
with the statement's first words; each commit is counted and timed
(``Dialect.do_commit``: on SQLite that is where the WAL write happens), and each new
DBAPI connection under the function that opened it. ``SIGUSR1``
writes the counters to ``FILE`` as JSON and starts them again from zero (the benchmark
sends one after the warm-up and one when the timed runs are done). Statements that
bypass SQLAlchemy (the receiver's raw SQLite cursor) are not seen.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.engine.default import DefaultDialect

_lock = threading.RLock()  # re-entrant: the SIGUSR1 handler runs on the main thread
_stmts: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
_commits: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
_connects: dict[str, int] = defaultdict(int)
_WORDS = re.compile(r"\s+")
_OURS = ("/dbos/", "/calflow/")


def _origin() -> str:
    """``package/module.py:function`` of the innermost calflow or DBOS frame."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        for marker in _OURS:
            at = name.rfind(marker)
            if at >= 0:
                return f"{name[at + 1 :]}:{frame.f_code.co_name}"
        frame = frame.f_back  # type: ignore[assignment]
    return "?"


def _shape(statement: str) -> str:
    text = _WORDS.sub(" ", statement).strip()
    return text[:70]


@event.listens_for(Engine, "before_cursor_execute")
def _before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
    conn.info["_wf_t0"] = time.perf_counter()


@event.listens_for(Engine, "after_cursor_execute")
def _after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
    spent = time.perf_counter() - conn.info.pop("_wf_t0", time.perf_counter())
    key = (_origin(), _shape(statement))
    with _lock:
        entry = _stmts[key]
        entry[0] += 1
        entry[1] += spent


@event.listens_for(Engine, "connect")
def _connect(dbapi_connection: Any, record: Any) -> None:
    origin = _origin()
    with _lock:
        _connects[origin] += 1


_do_commit = DefaultDialect.do_commit


def _timed_commit(self: DefaultDialect, dbapi_connection: Any) -> None:
    t0 = time.perf_counter()
    try:
        _do_commit(self, dbapi_connection)
    finally:
        spent = time.perf_counter() - t0
        origin = _origin()
        with _lock:
            entry = _commits[origin]
            entry[0] += 1
            entry[1] += spent


def _dump(signum: int, frame: Any) -> None:
    with _lock:
        data = {
            "statements": [
                {"origin": o, "sql": s, "count": int(c), "s": round(t, 4)}
                for (o, s), (c, t) in sorted(_stmts.items(), key=lambda kv: -kv[1][1])
            ],
            "commits": [
                {"origin": o, "count": int(c), "s": round(t, 4)}
                for o, (c, t) in sorted(_commits.items(), key=lambda kv: -kv[1][1])
            ],
        }
        data["connects"] = [{"origin": o, "count": c} for o, c in _connects.items()]
        _stmts.clear()
        _commits.clear()
        _connects.clear()
    out = Path(os.environ["WF_SQLCOUNT_OUT"])
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(out)


if __name__ == "__main__":
    DefaultDialect.do_commit = _timed_commit  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR1, _dump)
    from calflow.cli.main import main

    sys.exit(main(sys.argv[1:]))
