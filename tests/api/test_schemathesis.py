"""Property-based requests from ``/openapi.json`` (schemathesis): whatever the input, the
API answers without a server error and every answer conforms to the published schema
(status codes, content types, headers and bodies, errors included).

Run on SQLite and on PostgreSQL (which refuses what SQLite lets through: NUL
characters, over-long strings). Kept small (``MAX_EXAMPLES`` per operation) so the
whole file runs in well under two minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.python import asgi

from calflow.db.engine import reset_engines
from calflow.integrations import IntegrationStore
from calflow.server.app import create_app
from calflow.settings import Settings
from calflow.workspaces import TokenStore, WorkspaceStore
from db_fixtures import temporary_database

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 15
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
TOKENS: dict[str, str] = {}


def _schema(home: Path, url: str, key: str) -> schemathesis.BaseSchema:
    settings_ = Settings(home=home, database_url=url, api_rate_limit="")  # fuzz past any rate
    store = IntegrationStore.default(settings_)
    app = create_app(store, settings_)
    workspace = WorkspaceStore(store.engine).create("fuzz")
    _, TOKENS[key] = TokenStore(store.engine).create(workspace.id, "schemathesis")
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def api_schema(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[schemathesis.BaseSchema]:
    home = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    try:
        if request.param == "sqlite":
            yield _schema(home, f"sqlite:///{home / 'calflow.db'}", "current")
        else:
            with temporary_database() as url:
                yield _schema(home, url, "current")
    finally:
        asgi.shutdown_lifespans()
        reset_engines()


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema_and_never_fails(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKENS['current']}"}, checks=CHECKS)
