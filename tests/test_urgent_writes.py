"""The receiver's writes go ahead of the engine's queue on SQLite (``urgent_writes``).

Background writers (the engine's threads, other worker processes) queue among themselves
before they wait for the write lock, so a delivery a provider waits on is stored after
at most about one engine transaction, not after every queued one.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from calflow.db.engine import urgent_writes, write_transaction

pytestmark = pytest.mark.slow

HOLD_S = 0.3


def _engine(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("PRAGMA journal_mode=WAL"))
        conn.execute(text("CREATE TABLE IF NOT EXISTS log (n INTEGER PRIMARY KEY, who TEXT)"))
    return engine


def _order(path: Path) -> list[str]:
    engine = _engine(path)
    with engine.connect() as conn:
        return [str(w) for w in conn.execute(text("SELECT who FROM log ORDER BY n")).scalars()]


def test_an_urgent_writer_passes_the_queued_background_writers(tmp_path: Path) -> None:
    db = tmp_path / "calflow.db"
    engine = _engine(db)
    holding = threading.Event()

    def write(who: str, urgent: bool = False) -> None:
        def body() -> None:
            with write_transaction(engine) as conn:
                conn.execute(text("INSERT INTO log (who) VALUES (:w)"), {"w": who})
                if who == "first":
                    holding.set()
                time.sleep(HOLD_S)

        if urgent:
            with urgent_writes():
                body()
        else:
            body()

    first = threading.Thread(target=write, args=("first",))
    first.start()
    assert holding.wait(10)
    queued = [threading.Thread(target=write, args=(f"bg{n}",)) for n in range(4)]
    for thread in queued:
        thread.start()
    time.sleep(0.1)  # they are queued behind "first" (the lock is held for HOLD_S)
    urgent = threading.Thread(target=write, args=("urgent", True))
    urgent.start()
    for thread in [first, *queued, urgent]:
        thread.join(30)
    order = _order(db)
    assert order[0] == "first" and len(order) == 6
    assert order.index("urgent") <= 2, order  # after at most one background writer


CHILD = """
import sys, time
from sqlalchemy import Engine, create_engine, text
from calflow.db.engine import write_transaction
engine = create_engine("sqlite:///" + sys.argv[1])
for n in range(int(sys.argv[3])):
    with write_transaction(engine) as conn:
        conn.execute(text("INSERT INTO log (who) VALUES (:w)"), {"w": sys.argv[2]})
        time.sleep(float(sys.argv[4]))
"""


def test_background_writers_of_other_processes_queue_too(tmp_path: Path) -> None:
    """Four worker-like processes write in a loop; the receiver-like writer, urgent, is
    let in after about one of their transactions (without the queue it would wait
    behind all four: each holds the lock 50 ms). The kernel wakes every ``flock`` waiter
    at once and the first to run wins, so on a loaded machine a background writer now
    and then gets in first: the median is asserted, over nine writes, not each one."""
    db = tmp_path / "calflow.db"
    engine = _engine(db)
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(db), f"worker{n}", "25", "0.05"])
        for n in range(4)
    ]

    def count() -> int:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM log")).scalar_one())

    try:
        ahead = []
        while count() < 4:  # they are writing
            time.sleep(0.01)
        for _ in range(9):
            before = count()
            with urgent_writes(), write_transaction(engine) as conn:
                now = conn.execute(text("SELECT count(*) FROM log")).scalar_one()
                ahead.append(now - before)
                conn.execute(text("INSERT INTO log (who) VALUES ('urgent')"))
            time.sleep(0.06)
    finally:
        for child in children:
            assert child.wait(60) == 0
    assert sorted(ahead)[len(ahead) // 2] <= 2, ahead
