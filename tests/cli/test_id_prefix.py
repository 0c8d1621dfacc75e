"""Ids in the CLI: a unique prefix stands for the whole id, an ambiguous one lists the
candidates, and tables print ids whole (wrapped, never cut)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from calflow.db.engine import reset_engines
from calflow.db.refs import EVENT, INTEGRATION, TOKEN, WORKFLOW, resolve
from calflow.errors import NotFoundError, ValidationError
from calflow.events.inbox import Inbox
from calflow.events.normalize import normalize
from calflow.integrations import IntegrationStore
from calflow.settings import Settings
from calflow.workspaces import TokenStore, WorkspaceStore

from .conftest import Result, run_calflow, run_many
from .test_events_cli import cal_body

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Seeded:
    path: Path
    integrations: list[str]
    events: list[str]
    tokens: list[str]
    """A token of ``default``, then one of ``acme``."""


def unique_prefix(ids: list[str], target: str) -> str:
    """The shortest prefix of ``target`` that no other id in ``ids`` starts with."""
    for n in range(1, len(target) + 1):
        if not any(other.startswith(target[:n]) for other in ids if other != target):
            return target[:n]
    raise AssertionError(f"{target} is a prefix of another id")


def ambiguous(result: Result, *candidates: str) -> None:
    assert result.code == 2, str(result)
    assert "ambiguous" in result.err, str(result)
    for candidate in candidates:
        assert candidate in result.err, str(result)


def _seed(path: Path) -> tuple[list[str], list[str], list[str]]:
    settings = Settings(home=path, database_url=None, secret_keys=None)
    store = IntegrationStore.default(settings)
    integrations = [
        store.add("cal_com", name, {"base_url": "http://127.0.0.1:9/calcom"}, {"api_key": "k"}).id
        for name in ("one", "two", "int_")
    ]
    inbox = Inbox(store.engine, store.workspace_id)
    events = [
        inbox.publish(normalize("cal_com", cal_body("BOOKING_CREATED", uid))).event_id
        for uid in ("p-1", "p-2")
    ]
    acme = WorkspaceStore(store.engine).create("acme")
    tokens = TokenStore(store.engine)
    made = [tokens.create("default", "d")[0].id, tokens.create(acme.id, "a")[0].id]
    return integrations, events, made


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    path = tmp_path_factory.mktemp("prefix-home")
    try:
        integrations, events, tokens = _seed(path)
    finally:
        reset_engines()
    yield Seeded(path, integrations, events, tokens)


def test_resolve_takes_an_id_a_name_or_a_unique_prefix(seeded: Seeded) -> None:
    store = IntegrationStore.default(Settings(home=seeded.path, database_url=None))
    try:
        engine, (one, two, _) = store.engine, seeded.integrations
        assert resolve(engine, INTEGRATION, one, "default") == one
        assert resolve(engine, INTEGRATION, "two", "default") == "two"
        assert (
            resolve(engine, INTEGRATION, unique_prefix(seeded.integrations, two), "default") == two
        )
        # a name that looks like a prefix is the name
        assert resolve(engine, INTEGRATION, "int_", "default") == "int_"
        with pytest.raises(ValidationError) as many:
            resolve(engine, INTEGRATION, "int", "default")
        assert all(i in many.value.message for i in seeded.integrations)
        # LIKE's wildcards are plain characters in a prefix
        for wild in ("int%", "i_t_", "%"):
            with pytest.raises(NotFoundError, match="no integration"):
                resolve(engine, INTEGRATION, wild, "default")
        with pytest.raises(NotFoundError):  # ids of another workspace are not candidates
            resolve(engine, INTEGRATION, one, "ws_elsewhere")
        with pytest.raises(NotFoundError):
            resolve(engine, WORKFLOW, "wf_", "default")
        acme_token = seeded.tokens[1]
        with pytest.raises(NotFoundError, match=" in workspace 'default'"):
            resolve(engine, TOKEN, acme_token, "default", " in workspace 'default'")
        assert resolve(engine, TOKEN, acme_token[:-3], None) == acme_token  # any workspace
        assert resolve(engine, EVENT, seeded.events[0], "default") == seeded.events[0]
    finally:
        reset_engines()


def test_a_unique_prefix_works_wherever_an_id_is_taken(seeded: Seeded) -> None:
    one = seeded.integrations[0]
    event = seeded.events[1]
    shown, event_shown, listed_runs = run_many(
        seeded.path,
        ("integrations", "show", unique_prefix(seeded.integrations, one), "--json"),
        ("events", "show", unique_prefix(seeded.events, event), "--json"),
        ("runs", "list", "--workflow", "nope", "--json"),
    )
    assert shown.code == 0 and shown.json["id"] == one, str(shown)
    assert event_shown.code == 0 and event_shown.json["id"] == event, str(event_shown)
    assert listed_runs.code == 0 and listed_runs.json == []  # a deleted workflow's name


def test_an_ambiguous_or_unknown_prefix_is_a_clear_error(seeded: Seeded) -> None:
    integration, event, token, run, job, missing, misspelt = run_many(
        seeded.path,
        ("integrations", "show", "int"),
        ("events", "show", "evt_"),
        ("tokens", "revoke", "tok_"),
        ("runs", "show", "run_4"),
        ("replays", "show", "rpl_"),
        ("integrations", "remove", "int_zzzz"),
        ("integrations", "show", "tow"),
    )
    ambiguous(integration, *seeded.integrations)
    ambiguous(event, *seeded.events)
    ambiguous(token, *seeded.tokens)  # every workspace's tokens are candidates
    assert run.code == 2 and "no run 'run_4'" in run.err, str(run)
    assert job.code == 2 and "no replay job 'rpl_'" in job.err, str(job)
    assert missing.code == 2, str(missing)
    assert "no integration named or with id 'int_zzzz'" in missing.err, str(missing)
    assert misspelt.code == 2 and "did you mean 'two'?" in misspelt.err, str(misspelt)


def test_tokens_revoke_finds_a_token_in_any_workspace(tmp_path: Path) -> None:
    made = run_calflow(tmp_path, "tokens", "create", "-w", "acme", "--json")
    assert made.code == 0, str(made)
    token = made.json["token"]["id"]
    # the workspace of the environment does not hide another workspace's token
    revoked = run_calflow(
        tmp_path, "tokens", "revoke", token[:10], "--json", env={"CALFLOW_WORKSPACE": "default"}
    )
    assert revoked.code == 0, str(revoked)
    assert revoked.json["id"] == token and revoked.json["revoked"] is True
    listed = run_calflow(tmp_path, "tokens", "list", "-w", "acme", "--json")
    assert [(t["id"], t["revoked"]) for t in listed.json] == [(token, True)]
    elsewhere = run_calflow(tmp_path, "tokens", "revoke", token, "-w", "default")
    assert elsewhere.code == 2 and f"no token {token!r} in workspace 'default'" in elsewhere.err


def column(stdout: str, index: int) -> str:
    """Column ``index`` of a Rich table: every line's piece of it, joined."""
    rows = [line.split("│")[1:-1] for line in stdout.splitlines() if line.startswith("│")]
    return "".join(cells[index].strip() for cells in rows)


def test_tables_print_whole_ids_even_when_narrow(seeded: Seeded) -> None:
    got = run_calflow(seeded.path, "events", "list", env={"COLUMNS": "60"})
    assert got.code == 0, str(got)
    assert "…" not in got.stdout
    joined = column(got.stdout, 0)
    for event in seeded.events:
        assert event in joined, got.stdout
        assert event not in got.stdout  # folded: 60 columns cannot hold it on one line
    wide = run_calflow(seeded.path, "integrations", "list")
    assert wide.code == 0, str(wide)
    ids = column(wide.stdout, 1)
    assert all(i in ids for i in seeded.integrations), wide.stdout
