"""Engines, transactions and schema migrations for calflow's database.

SQLite (the embedded default) and PostgreSQL (the scale-out) are both
supported. Every engine comes from :func:`get_engine`, which caches one engine
per URL and configures SQLite for concurrent use (WAL, foreign keys, a busy
timeout, real ``BEGIN`` statements so transactions and savepoints behave).

Migrations are Alembic scripts shipped inside the package
(``calflow/db/migrations``); :func:`migrate` applies them without any
``alembic.ini`` and is safe to call from several processes at once.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from calflow.errors import ConfigError
from calflow.home import make_private_dir
from calflow.settings import Settings, get_settings

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "HEAD_REVISION",
    "MIGRATIONS_DIR",
    "current_revision",
    "downgrade",
    "get_engine",
    "migrate",
    "open_engine",
    "reset_engines",
    "write_transaction",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
"""The Alembic script directory shipped as package data."""
HEAD_REVISION = "0010"
"""The newest migration's revision (``tests/test_db.py`` checks it is Alembic's head): a
database already at it is opened without loading Alembic and its scripts."""

_SQLITE_BUSY_TIMEOUT_MS = 5000
_SQLITE_LOCK_WAIT_S = 120.0
_BEGIN_OPTION = "calflow_sqlite_begin"
# Key of the PostgreSQL advisory lock that serializes migrations across processes.
_PG_MIGRATION_LOCK = zlib.crc32(b"calflow.db.migrate")

_lock = threading.RLock()
_engines: dict[str, Engine] = {}
_migrated: set[str] = set()


def _normalize_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def get_engine(url: str) -> Engine:
    """Return the engine for ``url``, creating and caching it on first use.

    ``postgresql://`` (and ``postgres://``) URLs use the psycopg 3 driver. For
    a file-backed SQLite URL the parent directory is created (0700, if missing) and
    the file (0600), and every connection gets ``journal_mode=WAL``,
    ``foreign_keys=ON`` and ``busy_timeout=5000``.
    """
    key = _normalize_url(url)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _create_engine(key)
            _engines[key] = engine
        return engine


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database).expanduser()
        make_private_dir(path.parent)
        # Created private: it holds encrypted secrets and every booking event (its -wal
        # and -shm files get this file's mode from SQLite).
        path.touch(mode=0o600, exist_ok=True)
    engine = create_engine(url)
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling skips BEGIN before DDL and SELECT,
    # which breaks transactional migrations and savepoints; emit BEGIN
    # ourselves (the recipe from SQLAlchemy's SQLite documentation).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get(_BEGIN_OPTION, "BEGIN"))


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """Open a transaction that intends to write, for read-modify-write work.

    On SQLite the transaction starts with ``BEGIN IMMEDIATE`` so it holds the
    write lock from its first read (no lost updates, no late ``SQLITE_BUSY``);
    on PostgreSQL it is an ordinary transaction (pair it with
    ``SELECT … FOR UPDATE``). Commits on success, rolls back on error.
    """
    with _writer_lock(engine), engine.connect() as conn:
        _begin_write(conn)
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


class _SqliteWriters:
    """The queue SQLite writers of one database wait in, within and across processes.

    SQLite's own busy handler sleeps in growing steps (up to 100 ms) instead of waking
    when the lock frees, which showed as latency spikes when the receiver and the engine
    both wrote. Writers of one process queue on a lock; the one at its head then takes
    an ``flock`` on ``<database>-writer.lock``, which the kernel hands over the moment
    the writer before it (another ``calflow worker`` on the same home) lets go.

    Background writers (everything but the receiver's group commit, see
    :func:`urgent_writes`) first queue among themselves, in and across processes
    (``<database>-writer-queue.lock``), so at most one of them waits for the write lock
    at a time: a webhook's delivery, which a provider waits on, is stored after at most
    about one engine transaction, not behind every engine thread's and worker's. Within
    a process the precedence is explicit (Python's locks let a running thread barge in
    ahead of a woken one): a background writer at the head of the queue waits while an
    urgent writer of its process is waiting for the write lock.
    A database that is not a plain file (``:memory:``) has only the in-process locks."""

    def __init__(self, database: str | None) -> None:
        self._lock = threading.RLock()
        self._background = threading.Lock()
        self._urgent = 0  # urgent writers of this process waiting for the write lock
        self._turn = threading.Condition()
        self._depth = 0
        self._mine = threading.local()
        self._fd: int | None = None
        self._queue_fd: int | None = None
        self._path: Path | None = None
        self._queue_path: Path | None = None
        if database and database != ":memory:" and not database.startswith("file:"):
            db = Path(database).expanduser()
            self._path = db.with_name(db.name + "-writer.lock")
            self._queue_path = db.with_name(db.name + "-writer-queue.lock")

    @contextmanager
    def held(self) -> Iterator[None]:
        if getattr(self._mine, "depth", 0):
            with self._write_lock():
                yield
            return
        if _URGENT.get():
            with self._urgent_turn():
                yield
            return
        with self._background, self._file(self._queue_path, "_queue_fd"):
            with self._turn:
                self._turn.wait_for(lambda: self._urgent == 0)
            with self._write_lock():
                yield

    @contextmanager
    def _urgent_turn(self) -> Iterator[None]:
        with self._turn:
            self._urgent += 1
        waiting = True
        try:
            with self._write_lock():
                self._urgent_done()
                waiting = False
                yield
        finally:
            if waiting:
                self._urgent_done()

    def _urgent_done(self) -> None:
        with self._turn:
            self._urgent -= 1
            self._turn.notify_all()

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        with self._lock:
            self._mine.depth = getattr(self._mine, "depth", 0) + 1
            if self._depth == 0 and self._path is not None:
                self._fd = self._flock(self._path, self._fd)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                self._mine.depth -= 1
                if self._depth == 0 and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)

    @contextmanager
    def _file(self, path: Path | None, slot: str) -> Iterator[None]:
        if path is None:
            yield
            return
        fd = self._flock(path, getattr(self, slot))
        setattr(self, slot, fd)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    @staticmethod
    def _flock(path: Path, fd: int | None) -> int:
        if fd is None:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd


_writers: dict[int, _SqliteWriters] = {}
_URGENT: ContextVar[bool] = ContextVar("calflow_urgent_writes", default=False)


@contextmanager
def urgent_writes() -> Iterator[None]:
    """Within this context, SQLite writes skip the background writers' queue (see
    :class:`_SqliteWriters`): the receiver stores deliveries a provider is waiting on."""
    token = _URGENT.set(True)
    try:
        yield
    finally:
        _URGENT.reset(token)


@contextmanager
def _writer_lock(engine: Engine) -> Iterator[None]:
    """On SQLite, writers queue (see :class:`_SqliteWriters`); elsewhere, nothing."""
    if engine.dialect.name != "sqlite":
        yield
        return
    with _lock:
        writers = _writers.get(id(engine))
        if writers is None:
            writers = _writers[id(engine)] = _SqliteWriters(engine.url.database)
    with writers.held():
        yield


def _begin_write(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})
        _begin_sqlite_patiently(conn)
    else:
        conn.begin()


def _begin_sqlite_patiently(conn: Connection) -> None:
    # busy_timeout bounds one wait; a long migration in another process may
    # hold the lock longer, so keep waiting up to _SQLITE_LOCK_WAIT_S.
    deadline = time.monotonic() + _SQLITE_LOCK_WAIT_S
    while True:
        try:
            conn.begin()
            return
        except OperationalError as exc:
            conn.rollback()
            if "locked" not in str(exc).lower() or time.monotonic() > deadline:
                raise


def reset_engines() -> None:
    """Dispose every cached engine and forget which were migrated (for tests)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _migrated.clear()


def open_engine(settings: Settings | None = None) -> Engine:
    """The engine for ``settings`` (default: :func:`get_settings`), migrated to head.

    Migrations run at most once per process and URL.
    """
    engine = get_engine((settings or get_settings()).resolved_database_url())
    key = engine.url.render_as_string(hide_password=False)
    with _lock:
        if key not in _migrated:
            if _stored_revision(engine) != HEAD_REVISION:
                migrate(engine)
            _migrated.add(key)
    return engine


def _stored_revision(engine: Engine) -> str | None:
    """The revision in ``alembic_version``, read without Alembic; None if there is none."""
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    except DBAPIError:  # no such table yet: a new database
        return None
    return None if row is None else str(row[0])


def _alembic_config(conn: Connection) -> Config:
    from alembic.config import Config  # only when migrating: its import costs ~0.2 s

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = conn
    return config


@contextmanager
def _locked_migration_connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        is_sqlite = conn.dialect.name == "sqlite"
        if is_sqlite:
            # A batch migration rebuilds tables; with foreign keys on, dropping
            # the old table would cascade. Keys are checked before commit instead.
            _sqlite_raw(conn, "PRAGMA foreign_keys = OFF")
        try:
            _begin_write(conn)
            if conn.dialect.name == "postgresql":
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                )
            yield conn
            if is_sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first():
                raise ConfigError("a migration left rows that violate foreign keys")
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            if is_sqlite:
                _sqlite_raw(conn, "PRAGMA foreign_keys = ON")


def _sqlite_raw(conn: Connection, sql: str) -> None:
    # Straight to the driver: through SQLAlchemy it would run inside a
    # transaction, where SQLite ignores PRAGMA foreign_keys.
    driver_connection: Any = conn.connection.driver_connection
    driver_connection.execute(sql)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` (default: the newest), in one transaction.

    Idempotent. Concurrent callers are serialized: by a transaction-scoped
    advisory lock on PostgreSQL and by ``BEGIN IMMEDIATE`` on SQLite, so the
    second caller finds the schema already current.
    """
    from alembic import command

    with _locked_migration_connection(engine) as conn:
        command.upgrade(_alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Downgrade the schema to ``revision`` (default: drop everything calflow created)."""
    from alembic import command

    with _locked_migration_connection(engine) as conn:
        command.downgrade(_alembic_config(conn), revision)
    with _lock:
        _migrated.discard(engine.url.render_as_string(hide_password=False))


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
