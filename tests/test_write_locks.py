"""Writers that read before they write hold the write lock from their first read.

Each test lets a second connection try to write at the moment the writer has done its
first read (a SQLAlchemy ``after_cursor_execute`` hook, in the writer's own thread):

- on SQLite the second connection asks for the write lock without waiting. A writer
  that opened a plain deferred transaction would let it commit, and then fail its own
  write with "database is locked" (its read snapshot is stale); a writer that began
  with ``BEGIN IMMEDIATE`` already holds the lock, so the second connection is refused
  and writes once the writer has committed;
- on PostgreSQL the second connection asks for the writer's row with ``FOR UPDATE
  NOWAIT``: refused while the writer holds it, so two read-modify-writes of one row
  never interleave. Two applies of a new workflow name cannot lock a row that does not
  exist yet: the second connection creates it between the read and the write, and the
  writer still succeeds (as an update).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url

from calflow.db import get_engine, migrate
from calflow.integrations import IntegrationStore
from calflow.keys.ring import KeyRing, key_id
from calflow.keys.stored import reencrypt
from calflow.replay.jobs import JobStore
from calflow.vault import Vault
from calflow.workflows.store import WorkflowStore
from calflow.workspaces import TokenStore, WorkspaceStore
from db_fixtures import clean_calflow_env, isolated_pg_url, sqlite_url

pytestmark = pytest.mark.slow

__all__ = ["clean_calflow_env", "isolated_pg_url", "sqlite_url"]

FLOW: dict[str, Any] = {
    "name": "remind",
    "trigger": {"kinds": ["created"]},
    "steps": [{"id": "get", "action": "cal_com.GetBooking",
               "input": {"bookingUid": "{{ booking.uid }}"}}],
}  # fmt: skip


@dataclass
class Probe:
    """What the second connection met when the writer had done its first read."""

    table: str
    compete: Callable[[], str]
    owner: int = field(default_factory=threading.get_ident)
    result: str | None = None


@contextmanager
def at_first_read(engine: Engine, table: str, compete: Callable[[], str]) -> Iterator[Probe]:
    """Run ``compete`` once, right after this thread's first SELECT that reads ``table``."""
    probe = Probe(table, compete)

    def after(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if probe.result is not None or threading.get_ident() != probe.owner:
            return
        if statement.lstrip().upper().startswith("SELECT") and f"{table}." in statement:
            probe.result = compete()

    event.listen(engine, "after_cursor_execute", after)
    try:
        yield probe
    finally:
        event.remove(engine, "after_cursor_execute", after)


def _sqlite_path(engine: Engine) -> str:
    return str(make_url(str(engine.url)).database)


def _sqlite_competitor(engine: Engine) -> Callable[[], str]:
    """Take the write lock without waiting and commit a row: "committed", or "locked"."""

    def compete() -> str:
        conn = sqlite3.connect(_sqlite_path(engine), timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            assert "locked" in str(exc)
            return "locked"
        else:
            conn.execute("INSERT INTO lock_probe VALUES (1)")
            conn.execute("COMMIT")
            return "committed"
        finally:
            conn.close()

    return compete


def _probe_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM lock_probe")).scalar_one())


def _write_after(engine: Engine) -> None:
    """The second connection's write, once the writer is done: it goes through now."""
    conn = sqlite3.connect(_sqlite_path(engine), timeout=5, isolation_level=None)
    try:
        conn.execute("INSERT INTO lock_probe VALUES (2)")
    finally:
        conn.close()


@dataclass
class Stores:
    engine: Engine
    vault: Vault
    integrations: IntegrationStore
    workflows: WorkflowStore
    workspaces: WorkspaceStore
    tokens: TokenStore
    jobs: JobStore


@pytest.fixture
def sqlite_stores(sqlite_url: str) -> Stores:
    engine = get_engine(sqlite_url)
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE lock_probe (n INTEGER)"))
    return _stores(engine)


def _stores(engine: Engine) -> Stores:
    vault = Vault([Vault.generate_key()])
    return Stores(
        engine,
        vault,
        IntegrationStore(engine, vault),
        WorkflowStore(engine),
        WorkspaceStore(engine),
        TokenStore(engine),
        JobStore(engine, vault),
    )


def _job(s: Stores) -> str:
    integration = s.integrations.add("cal_com", "main", {}, {"api_key": "k"})
    return s.jobs.create(integration_id=integration.id, provider="cal_com", target="calflow",
                         options={}, secret=None).id  # fmt: skip


Call = Callable[[], object]


def _apply_new(s: Stores) -> Call:
    return lambda: s.workflows.apply(FLOW)


def _apply_update(s: Stores) -> Call:
    s.workflows.apply(FLOW)
    return lambda: s.workflows.apply({**FLOW, "description": "d"})


def _integration_update(s: Stores) -> Call:
    s.integrations.add("http", "web", {}, {})
    return lambda: s.integrations.update("web", config={"x": 1})


def _workspace_settings(s: Stores) -> Call:
    return lambda: s.workspaces.update_settings("default", {"tz": "UTC"})


def _token_create(s: Stores) -> Call:
    return lambda: s.tokens.create("default", "ci")


def _replay_claim(s: Stores) -> Call:
    job = _job(s)
    return lambda: s.jobs.claim(job)


def _replay_cancel(s: Stores) -> Call:
    job = _job(s)
    return lambda: s.jobs.cancel(job)


def _replay_finish(s: Stores) -> Call:
    job = _job(s)
    return lambda: s.jobs.finish(job, "completed", error=None, duration_s=1.0)


def _reencryption(s: Stores) -> Call:
    s.integrations.add("http", "web", {}, {"token": "t"})
    new = Vault.generate_key()
    ring = KeyRing([new, *s.vault.ring.keys])
    return lambda: reencrypt(s.engine, ring, key_id(new))


# (the writer, the table it reads first, its set-up returning the call under test)
WRITERS: list[tuple[str, str, Callable[[Stores], Call]]] = [
    ("workflow apply (new)", "workflows", _apply_new),
    ("workflow apply (update)", "workflows", _apply_update),
    ("integration update", "integrations", _integration_update),
    ("workspace settings", "workspaces", _workspace_settings),
    ("token create", "workspaces", _token_create),
    ("replay claim", "replay_jobs", _replay_claim),
    ("replay cancel", "replay_jobs", _replay_cancel),
    ("replay finish", "replay_jobs", _replay_finish),
    ("re-encryption under a new key", "integrations", _reencryption),
]


@pytest.mark.parametrize(("name", "table", "prepare"), WRITERS, ids=[w[0] for w in WRITERS])
def test_sqlite_writer_holds_the_lock_from_its_first_read(
    sqlite_stores: Stores, name: str, table: str, prepare: Callable[[Stores], Call]
) -> None:
    s = sqlite_stores
    call = prepare(s)
    with at_first_read(s.engine, table, _sqlite_competitor(s.engine)) as probe:
        call()  # "database is locked" here if another writer committed after the read
    assert probe.result == "locked", f"{name}: another connection wrote after its read"
    _write_after(s.engine)
    assert _probe_rows(s.engine) == 1


def test_a_writer_waits_out_a_long_write_elsewhere_instead_of_failing(
    sqlite_stores: Stores,
) -> None:
    """A write held open by another process for longer than SQLite's busy timeout:
    apply's first ``BEGIN IMMEDIATE`` gives up, it tries again instead of failing, and
    once the other write commits it applies."""
    s = sqlite_stores
    other = sqlite3.connect(_sqlite_path(s.engine), timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO lock_probe VALUES (1)")
    attempts = threading.Semaphore(0)
    outcome: list[object] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement == "BEGIN IMMEDIATE":
            attempts.release()

    event.listen(s.engine, "before_cursor_execute", before)
    worker = threading.Thread(target=lambda: outcome.append(s.workflows.apply(FLOW)[1]))
    try:
        worker.start()
        assert attempts.acquire(timeout=60) and attempts.acquire(timeout=60)  # a second try
        other.execute("COMMIT")
        worker.join(60)
    finally:
        event.remove(s.engine, "before_cursor_execute", before)
        other.close()
    assert outcome == ["created"]
    assert _probe_rows(s.engine) == 1


# ----------------------------------------------------------------- PostgreSQL


def _pg_lock_competitor(engine: Engine, table: str, row_id: str) -> Callable[[], str]:
    """Ask for the writer's row without waiting: "locked" or "free"."""
    url = make_url(str(engine.url)).set(drivername="postgresql")

    def compete() -> str:
        with psycopg.connect(url.render_as_string(hide_password=False)) as conn:
            try:
                query = sql.SQL("SELECT 1 FROM {} WHERE id = %s FOR UPDATE NOWAIT")
                conn.execute(query.format(sql.Identifier(table)), [row_id])
            except psycopg.errors.LockNotAvailable:
                return "locked"
            return "free"

    return compete


@pytest.fixture
def pg_stores(isolated_pg_url: str) -> Stores:
    engine = get_engine(isolated_pg_url)
    migrate(engine)
    return _stores(engine)


@pytest.mark.postgres
def test_postgres_workflow_apply_locks_the_row_it_updates(pg_stores: Stores) -> None:
    s = pg_stores
    stored, _ = s.workflows.apply(FLOW)
    compete = _pg_lock_competitor(s.engine, "workflows", stored.id)
    with at_first_read(s.engine, "workflows", compete) as probe:
        updated, outcome = s.workflows.apply({**FLOW, "description": "d"})
    assert probe.result == "locked"
    assert (outcome, updated.version) == ("updated", 2)


@pytest.mark.postgres
@pytest.mark.parametrize("what", ["integration", "workspace", "replay job"])
def test_postgres_read_modify_writes_lock_their_row(pg_stores: Stores, what: str) -> None:
    s = pg_stores
    if what == "integration":
        call, table = _integration_update(s), "integrations"
        row_id = s.integrations.get("web").id
    elif what == "workspace":
        call, table, row_id = _workspace_settings(s), "workspaces", "default"
    else:
        call, table = _replay_finish(s), "replay_jobs"
        row_id = s.jobs.list()[0].id
    with at_first_read(s.engine, table, _pg_lock_competitor(s.engine, table, row_id)) as probe:
        call()
    assert probe.result == "locked", what


@pytest.mark.postgres
def test_postgres_apply_of_a_name_created_meanwhile_becomes_an_update(pg_stores: Stores) -> None:
    s = pg_stores
    other = WorkflowStore(s.engine)

    def compete() -> str:
        done: list[object] = []
        thread = threading.Thread(target=lambda: done.append(other.apply(FLOW)[1]))
        thread.start()  # its own connection: commits while the writer's read is done
        thread.join(60)
        return str(done[0])

    with at_first_read(s.engine, "workflows", compete) as probe:
        stored, outcome = s.workflows.apply({**FLOW, "description": "second"})
    assert probe.result == "created"
    assert (outcome, stored.version, stored.definition.description) == ("updated", 2, "second")
