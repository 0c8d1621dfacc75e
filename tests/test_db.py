"""calflow.db: engines, SQLite settings, migrations (idempotent, concurrent, reversible)."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, insert, inspect, select, text

from calflow.db import (
    Base,
    IntegrationRow,
    current_revision,
    downgrade,
    get_engine,
    migrate,
    open_engine,
    write_transaction,
)
from calflow.settings import Settings
from db_fixtures import (
    clean_calflow_env,
    isolated_pg_url,
    pg_database_url,
    pg_fresh_url,
    sqlite_url,
)

__all__ = ["clean_calflow_env", "isolated_pg_url", "pg_database_url", "pg_fresh_url", "sqlite_url"]

HEAD = "0010"


def test_the_fast_path_knows_the_newest_migration() -> None:
    """``open_engine`` skips Alembic for a database at ``HEAD_REVISION``: it must be the
    head of the scripts shipped, or a new migration would never run."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from calflow.db.engine import HEAD_REVISION, MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD_REVISION] == [HEAD]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("isolated_pg_url"))


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_sqlite_engine_is_cached_creates_parent_and_sets_pragmas(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'deep' / 'er' / 'calflow.db'}"
    engine = get_engine(url)
    assert get_engine(url) is engine
    assert (tmp_path / "deep" / "er").is_dir()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    engine.dispose()


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_postgres_urls_use_psycopg3(scheme: str) -> None:
    engine = get_engine(f"{scheme}://user@db.invalid:5432/calflow")
    assert engine.url.drivername == "postgresql+psycopg"
    assert engine.dialect.driver == "psycopg"


def test_open_engine_uses_settings_and_migrates(tmp_path: Path, sqlite_url: str) -> None:
    engine = open_engine(Settings(home=tmp_path))
    assert engine is get_engine(sqlite_url)
    assert current_revision(engine) == HEAD
    assert "integrations" in _tables(engine)


def test_migrate_is_idempotent(db_url: str) -> None:
    engine = get_engine(db_url)
    assert current_revision(engine) is None
    migrate(engine)
    migrate(engine)
    assert current_revision(engine) == HEAD
    assert {"integrations", "alembic_version"} <= _tables(engine)


def test_downgrade_then_upgrade_again(db_url: str) -> None:
    engine = get_engine(db_url)
    migrate(engine)
    downgrade(engine)
    assert current_revision(engine) is None
    assert "integrations" not in _tables(engine)
    migrate(engine)
    assert current_revision(engine) == HEAD


def test_models_match_migrations(db_url: str) -> None:
    engine = get_engine(db_url)
    migrate(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_concurrent_migrate_in_threads(db_url: str) -> None:
    engine = get_engine(db_url)
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def run() -> None:
        try:
            barrier.wait()
            migrate(engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert current_revision(engine) == HEAD


def test_concurrent_migrate_in_processes(db_url: str) -> None:
    script = (
        "import sys\nfrom calflow.db import get_engine, migrate\nmigrate(get_engine(sys.argv[1]))\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, db_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    results = [(proc.communicate(timeout=120)[1], proc.returncode) for proc in procs]
    assert [code for _, code in results] == [0, 0, 0, 0], results
    assert current_revision(get_engine(db_url)) == HEAD


def test_timestamps_come_back_aware_utc(db_url: str) -> None:
    engine = get_engine(db_url)
    migrate(engine)
    local = datetime(2025, 3, 30, 2, 30, tzinfo=timezone(timedelta(hours=2)))
    with engine.begin() as conn:
        conn.execute(
            insert(IntegrationRow).values(
                id="int_0000000000000001",
                workspace_id="default",
                app_key="http",
                name="t",
                config={},
                secrets="x",
                created_at=local,
                updated_at=local,
            )
        )
    with engine.connect() as conn:
        created = conn.execute(select(IntegrationRow.created_at)).scalar_one()
    assert created.tzinfo is not None
    assert created.utcoffset() == timedelta(0)
    assert created == local.astimezone(UTC)


def test_naive_timestamps_are_refused(sqlite_url: str) -> None:
    engine = get_engine(sqlite_url)
    migrate(engine)
    with pytest.raises(Exception, match="naive datetime"), engine.begin() as conn:
        conn.execute(
            insert(IntegrationRow).values(
                id="int_0000000000000002",
                app_key="http",
                name="n",
                config={},
                secrets="x",
                created_at=datetime(2025, 1, 1),
                updated_at=datetime(2025, 1, 1),
            )
        )


def test_write_transaction_commits_and_rolls_back(db_url: str) -> None:
    engine = get_engine(db_url)
    with write_transaction(engine) as conn:
        conn.execute(text("CREATE TABLE scratch (n INTEGER)"))
        conn.execute(text("INSERT INTO scratch VALUES (1)"))
    with pytest.raises(RuntimeError), write_transaction(engine) as conn:
        conn.execute(text("INSERT INTO scratch VALUES (2)"))
        raise RuntimeError("boom")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM scratch")).scalars().all() == [1]


def test_sqlite_write_transactions_serialize(sqlite_url: str) -> None:
    """Read-modify-write under write_transaction loses no increments."""
    engine = get_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE counter (n INTEGER)"))
        conn.execute(text("INSERT INTO counter VALUES (0)"))

    def bump() -> None:
        for _ in range(20):
            with write_transaction(engine) as conn:
                n = conn.execute(text("SELECT n FROM counter")).scalar_one()
                conn.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM counter")).scalar_one() == 80


def test_migrations_dir_is_package_data() -> None:
    from calflow.db.engine import MIGRATIONS_DIR

    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0001_integrations.py").is_file()
