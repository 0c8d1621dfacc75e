"""``calflow doctor``'s checks: each finds one thing right or wrong and says how to fix it.

:func:`run_checks` returns one :class:`Check` per line: Python, the settings and
``CALFLOW_ALLOW_PRIVATE``, the home (writable, private modes, free space), the database
(reachable, migrated, SQLite's WAL), the keys (present, and every integration's secrets
decrypt), each integration (its ``base_url``/``host`` allowed by the operator's policy,
its webhook secret for a booking provider, and with ``online`` its app's connection
test), the engine's backlog (a due run long late, dead letters) and whether a
``calflow serve`` holds the home's lock. Nothing is changed: no
key file, database or migration is created, and no provider is called unless ``online``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from calflow.errors import CalflowError
from calflow.settings import Settings

__all__ = ["CONNECTION_TESTS", "Check", "run_checks"]

Status = Literal["ok", "warn", "fail"]
MIN_PYTHON = (3, 11)
MIN_FREE_BYTES = 200 * 1024 * 1024
PROVIDERS = ("cal_com", "savvycal")
CONNECTION_TESTS: dict[str, tuple[str, dict[str, Any]]] = {
    "cal_com": ("GetAllBookings", {"limit": 1}),
    "savvycal": ("GetMe", {}),
    "twilio": ("GetAccount", {}),
    "email": ("TestConnection", {}),
}
"""Each app's read-only action that proves an integration's credentials and address."""


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, how it stands, why, and the fix."""

    name: str
    status: Status
    message: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _python() -> Check:
    found = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] >= MIN_PYTHON:
        return Check("python", "ok", f"Python {found}")
    wanted = ".".join(map(str, MIN_PYTHON))
    return Check("python", "fail", f"Python {found}", f"install Python {wanted} or newer")


def _allow_private() -> Check:
    from calflow.netpolicy import parse_allowance

    text = os.environ.get("CALFLOW_ALLOW_PRIVATE", "")
    try:
        allowance = parse_allowance(text)
    except CalflowError as exc:
        return Check(
            "allow_private",
            "fail",
            exc.message,
            "set CALFLOW_ALLOW_PRIVATE to networks, addresses or host names, "
            "comma-separated, or '*'",
        )
    if allowance.everything:
        return Check(
            "allow_private",
            "warn",
            "every private target is allowed ('*')",
            "list only the networks or hosts you need in CALFLOW_ALLOW_PRIVATE",
        )
    shown = [str(n) for n in allowance.networks] + sorted(allowance.hosts)
    what = ", ".join(shown) if shown else "none (public targets only)"
    return Check("allow_private", "ok", f"private targets allowed: {what}")


def _home(settings: Settings) -> Iterator[Check]:
    from calflow.home import loose_modes

    home = settings.home
    if not home.is_dir():
        yield Check(
            "home",
            "warn",
            f"{home} does not exist yet",
            "it is made (0700) by the first calflow command that stores something",
        )
        return
    try:
        with tempfile.TemporaryFile(dir=home):
            pass
    except OSError as exc:
        yield Check(
            "home",
            "fail",
            f"{home} is not writable: {exc.strerror}",
            f"give this user write access: chown -R $USER {home}",
        )
        return
    yield Check("home", "ok", f"{home} is writable")
    loose = loose_modes(home)
    if loose:
        fixes = "; ".join(line.rsplit("fix it with: ", 1)[-1] for line in loose)
        yield Check("home modes", "warn", f"{len(loose)} path(s) open to other users", fixes)
    else:
        yield Check("home modes", "ok", "the home is 0700 and its files 0600")
    free = shutil.disk_usage(home).free
    mib = free // (1024 * 1024)
    if free < MIN_FREE_BYTES:
        yield Check(
            "free space",
            "warn",
            f"{mib} MiB free in {home}",
            "free some space: SQLite needs room to write and checkpoint",
        )
    else:
        yield Check("free space", "ok", f"{mib:,} MiB free")


def _database(settings: Settings) -> tuple[list[Check], Any]:
    """The database checks and its engine (None when it is not usable)."""
    from alembic.script import ScriptDirectory
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from calflow.db.engine import MIGRATIONS_DIR, current_revision, get_engine

    url = settings.resolved_database_url()
    shown = make_url(url).render_as_string(hide_password=True)
    missing = not settings.database_url and not (settings.home / "calflow.db").exists()
    if missing:
        return [
            Check(
                "database",
                "warn",
                f"{shown} does not exist yet",
                "it is made by the first calflow command that stores something",
            )
        ], None
    try:
        engine = get_engine(url)
        revision = current_revision(engine)
    except Exception as exc:  # any driver error: the message says what
        why = str(exc).splitlines()[0][:200]
        return [
            Check(
                "database",
                "fail",
                f"{shown} is unreachable: {why}",
                "check CALFLOW_DATABASE_URL and that the database server runs",
            )
        ], None
    checks = [Check("database", "ok", f"{shown} answers")]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    known = {s.revision for s in script.walk_revisions()}
    if revision == head:
        checks.append(Check("migrations", "ok", f"at {head}, the newest"))
    elif revision is None or revision in known:
        checks.append(
            Check(
                "migrations",
                "warn",
                f"at {revision or 'none'}, the newest is {head}",
                "they run when calflow serve or any command starts",
            )
        )
    else:
        checks.append(
            Check(
                "migrations",
                "fail",
                f"at {revision}, which this calflow does not know (a newer one migrated it)",
                "upgrade calflow to the version that migrated it",
            )
        )
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            mode = str(conn.execute(text("PRAGMA journal_mode")).scalar())
        status: Status = "ok" if mode.lower() == "wal" else "warn"
        checks.append(
            Check(
                "sqlite journal",
                status,
                f"journal_mode={mode}",
                ""
                if status == "ok"
                else "calflow sets WAL when it opens the database; another program changed it",
            )
        )
    return checks, engine if revision == head else None


def _vault(settings: Settings) -> tuple[Check, Any]:
    from calflow.vault import Vault

    try:
        vault = Vault.from_settings(settings, create=False)
        count = len(vault.ring.ids)
    except CalflowError as exc:
        return Check(
            "keys",
            "fail",
            exc.message,
            "restore secret.key from your backup, or set CALFLOW_SECRET_KEYS",
        ), None
    return Check("keys", "ok", f"{count} key(s) from {vault.keys_source}"), vault


def _integrations(settings: Settings, engine: Any, vault: Any, online: bool) -> Iterator[Check]:
    from sqlalchemy.orm import Session

    from calflow.db.models import DEFAULT_WORKSPACE, IntegrationRow
    from calflow.integrations import IntegrationStore
    from calflow.netpolicy import check_fields_sync, parse_allowance

    operator = parse_allowance(settings.allow_private)
    with Session(engine) as session:
        rows = list(session.query(IntegrationRow).order_by(IntegrationRow.name))
    if not rows:
        yield Check("integrations", "ok", "none yet")
        return
    undecryptable = []
    for row in rows:
        name = f"integration {row.name}" + (
            "" if row.workspace_id == DEFAULT_WORKSPACE else f" ({row.workspace_id})"
        )
        store = IntegrationStore(engine, vault, row.workspace_id)
        try:
            found = store.get(row.id)
        except CalflowError:
            undecryptable.append(row.name)
            yield Check(
                name,
                "fail",
                "its secrets do not decrypt with the keys at hand",
                "put back the key they were saved with (CALFLOW_SECRET_KEYS or "
                "secret.key), or set them again: calflow integrations update",
            )
            continue
        try:
            check_fields_sync(dict(row.config), operator)
        except CalflowError as exc:
            yield Check(
                name,
                "fail",
                f"{row.app_key}: {exc.message}",
                "allow it in CALFLOW_ALLOW_PRIVATE, or point it at an allowed address "
                "with calflow integrations update",
            )
            continue
        if row.app_key in PROVIDERS and not found.value("webhook_secret"):
            yield Check(
                name,
                "warn",
                f"{row.app_key}: no webhook signing secret, so deliveries are refused (401)",
                f"calflow webhooks register {row.app_key} -i {row.name} "
                "--url <calflow's public URL>",
            )
            continue
        if online:
            yield _connection_test(name, found, store)
            continue
        yield Check(name, "ok", f"{row.app_key}: target allowed, secrets decrypt")
    if not undecryptable:
        yield Check("secrets", "ok", f"the secrets of {len(rows)} integration(s) decrypt")


def _no_integrations(engine: Any) -> bool:
    """True when ``engine``'s database holds no integration (None: unknown, False)."""
    if engine is None:
        return False
    from sqlalchemy import func, select

    from calflow.db.models import IntegrationRow

    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(IntegrationRow)).scalar_one()) == 0


def _connection_test(name: str, integration: Any, store: Any) -> Check:
    from calflow.flowapp.runner import Runner

    test = CONNECTION_TESTS.get(integration.app_key)
    if test is None:
        return Check(name, "ok", f"{integration.app_key}: target allowed (no connection test)")
    action, data = test

    async def go() -> Any:
        async with Runner(store=store) as runner:
            return await runner.run_action(integration.app_key, action, data, integration)

    try:
        result = asyncio.run(go())
    except CalflowError as exc:
        return Check(
            name,
            "fail",
            f"{integration.app_key} {action}: {exc.message}",
            "check its base_url and credentials: calflow integrations update",
        )
    if result.success:
        return Check(name, "ok", f"{integration.app_key}: {action} answered")
    return Check(
        name,
        "fail",
        f"{integration.app_key} {action}: {result.code}: {result.message}",
        "check its base_url and credentials: calflow integrations update",
    )


LATE_S = 300.0
"""A due run this late means no engine is taking runs (or it is far behind)."""


def _engine(engine: Any) -> Iterator[Check]:
    from calflow.workflows.backlog import read_backlog

    try:
        backlog = read_backlog(engine)
    except Exception as exc:
        yield Check("engine", "fail", f"the runs cannot be read ({type(exc).__name__})")
        return
    late = f"{backlog.due} run(s) due, the oldest {backlog.oldest_late_s:,.0f} s late"
    if backlog.oldest_late_s > LATE_S:
        yield Check("engine", "warn", f"{late}: no engine is taking them, or it is behind",
                    "run calflow serve (or calflow worker) on this database")  # fmt: skip
    else:
        yield Check("engine", "ok", late if backlog.due else "no run is waiting past its time")
    if backlog.dead:
        fix = "see them with: calflow runs list --dead; retry: calflow runs retry RUN"
        yield Check("dead letters", "warn", f"{backlog.dead} failed run(s) no route took", fix)
    else:
        yield Check("dead letters", "ok", "none")


def _server(settings: Settings) -> Check:
    from calflow.server.serve_lock import holder

    running = holder(settings.home)
    if running is None:
        return Check(
            "server", "ok", "no calflow serve runs on this home", "start one with: calflow serve"
        )
    return Check("server", "ok", f"calflow serve runs on this home ({running.describe()})")


def run_checks(online: bool = False) -> list[Check]:
    """Every check, in order (later ones are skipped when what they need failed)."""
    from calflow.settings import get_settings

    checks = [_python(), _allow_private()]
    try:
        settings = get_settings()
    except CalflowError as exc:
        checks.append(Check("settings", "fail", exc.message, "fix the CALFLOW_* variable named"))
        return checks
    checks.append(Check("settings", "ok", "every CALFLOW_* variable parses"))
    checks += _home(settings)
    database, engine = _database(settings)
    checks += database
    if Path(settings.home).is_dir() or settings.secret_key_text():
        keys, vault = _vault(settings)
        if vault is None and not settings.secret_key_text() and _no_integrations(engine):
            keys = Check("keys", "warn", "no key file yet, and nothing encrypted needs one",
                         "it is made (0600) when the first integration is added")  # fmt: skip
        checks.append(keys)
        if engine is not None and vault is not None:
            checks += _integrations(settings, engine, vault, online)
    if engine is not None:
        checks += _engine(engine)
    checks.append(_server(settings))
    return checks
