"""Database helpers and fixtures shared by tests (a plain module: import what you need).

PostgreSQL tests use ``pg_url()`` (``CALFLOW_TEST_PG_URL`` or the local
default) and skip when it is unreachable, unless ``CI=true``, where they fail.

    from db_fixtures import pg_database_url, pg_fresh_url, isolated_pg_url  # noqa: F401

- ``pg_database_url`` (session): a uniquely named database created for this
  test session and dropped at its end.
- ``pg_fresh_url`` (function): that session database, with the ``public``
  schema dropped and recreated after the test.
- ``isolated_pg_url`` (function): a brand-new database for one test, dropped
  after it (use it when processes or other schemas are involved).
- ``sqlite_url`` (function): a SQLite file URL in ``tmp_path``.
- ``clean_calflow_env`` (autouse once imported): unsets ``CALFLOW_*`` variables, then
  sets ``CALFLOW_ALLOW_PRIVATE`` to :data:`LOCAL_TARGETS`, as an operator running the
  sandbox and receivers on this machine would (tests of the policy itself set their own).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from calflow.db.engine import reset_engines

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def pg_url() -> str:
    """The admin PostgreSQL URL for tests (``CALFLOW_TEST_PG_URL`` overrides the default)."""
    return os.environ.get("CALFLOW_TEST_PG_URL", DEFAULT_PG_URL)


def _libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def require_postgres() -> str:
    """``pg_url()`` if PostgreSQL answers; otherwise skip the test (fail when ``CI=true``)."""
    url = pg_url()
    try:
        with psycopg.connect(_libpq_url(url), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        message = f"PostgreSQL not reachable at {_shown(url)}: {exc}".strip()
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url


@contextmanager
def temporary_database(admin_url: str | None = None) -> Iterator[str]:
    """Create a uniquely named PostgreSQL database; yield its URL; drop it afterwards."""
    admin = _libpq_url(admin_url or require_postgres())
    name = f"calflow_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        reset_engines()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def reset_public_schema(url: str) -> None:
    """Drop and recreate the ``public`` schema of the database at ``url``."""
    reset_engines()
    with psycopg.connect(_libpq_url(url), autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A PostgreSQL database of this test session, dropped at its end."""
    with temporary_database() as url:
        yield url


@pytest.fixture
def pg_fresh_url(pg_database_url: str) -> Iterator[str]:
    """The session database, emptied (``public`` schema recreated) after the test."""
    yield pg_database_url
    reset_public_schema(pg_database_url)


@pytest.fixture
def isolated_pg_url() -> Iterator[str]:
    """A PostgreSQL database of its own for one test, dropped after it."""
    with temporary_database() as url:
        yield url


@pytest.fixture(autouse=True)
def clean_calflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``CALFLOW_*`` variable of the developer's shell leaks into ``Settings()`` (autouse);
    the sandbox and receivers on loopback are allowed targets (:data:`LOCAL_TARGETS`)."""
    for name in list(os.environ):
        if name.startswith("CALFLOW_") and name != "CALFLOW_TEST_PG_URL":
            monkeypatch.delenv(name)
    allow_local_targets(monkeypatch)


LOCAL_TARGETS = "127.0.0.0/8,::1,localhost"
"""The operator allowance tests run under: the sandbox, SMTP sink and receivers listen on
loopback (``CALFLOW_ALLOW_PRIVATE``)."""


def allow_local_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set ``CALFLOW_ALLOW_PRIVATE`` to :data:`LOCAL_TARGETS` (cached settings dropped)."""
    from calflow.settings import get_settings

    monkeypatch.setenv("CALFLOW_ALLOW_PRIVATE", LOCAL_TARGETS)
    get_settings.cache_clear()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    """A SQLite database file in ``tmp_path``; cached engines are disposed afterwards."""
    yield f"sqlite:///{tmp_path / 'calflow.db'}"
    reset_engines()
