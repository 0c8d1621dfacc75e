"""``--workspace`` / ``CALFLOW_WORKSPACE`` on the commands that read or change a workspace's
data: what is made in one workspace is invisible from another."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from calflow.db.engine import reset_engines
from calflow.events.inbox import Inbox
from calflow.events.normalize import normalize
from calflow.integrations import IntegrationStore
from calflow.settings import Settings
from calflow.workspaces import WorkspaceStore

from .conftest import Result, run_calflow, run_many
from .test_events_cli import cal_body

pytestmark = pytest.mark.slow

API_KEY = "cal_live_workspace_test_key"


@dataclass(frozen=True)
class Spaces:
    """A home with workspaces ``alpha`` (an integration, a workflow, an event) and ``beta``
    (nothing)."""

    path: Path
    integration: str
    workflow: str
    event: str


def _clear(result: Result, *fragments: str) -> None:
    assert result.code == 2, str(result)
    for fragment in fragments:
        assert fragment in result.err, str(result)


@pytest.fixture(scope="module")
def spaces(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spaces]:
    path = tmp_path_factory.mktemp("workspaces-home")
    try:
        settings = Settings(home=path, database_url=None, secret_keys=None)
        store = IntegrationStore.default(settings)
        alpha = WorkspaceStore(store.engine).create("alpha")
        WorkspaceStore(store.engine).create("beta")
        event = normalize(
            "cal_com", cal_body("BOOKING_CREATED", "ws-1"), source="webhook", integration_id=None
        )
        event_id = Inbox(store.engine, alpha.id).publish(event).event_id
    finally:
        reset_engines()
    added = run_calflow(
        path, "integrations", "add", "cal_com", "--name", "main", "-w", "alpha",
        "--set", f"api_key={API_KEY}", "--set", "base_url=http://127.0.0.1:9/calcom", "--json",
    )  # fmt: skip
    assert added.code == 0, str(added)
    applied = run_calflow(
        path, "workflows", "apply", "--builtin", "rescheduled-notice", "--workspace", "alpha",
        "--allow-missing-integrations", "--json",
    )  # fmt: skip
    assert applied.code == 0, str(applied)
    (workflow,) = applied.json
    yield Spaces(path, added.json["id"], workflow["id"], event_id)


def test_what_is_made_in_one_workspace_is_listed_there_only(spaces: Spaces) -> None:
    in_alpha = run_many(
        spaces.path,
        ("integrations", "list", "-w", "alpha", "--json"),
        ("workflows", "list", "-w", "alpha", "--json"),
        ("events", "list", "-w", "alpha", "--json"),
    )
    in_beta = run_many(
        spaces.path,
        ("integrations", "list", "-w", "beta", "--json"),
        ("workflows", "list", "-w", "beta", "--json"),
        ("events", "list", "-w", "beta", "--json"),
        ("runs", "list", "-w", "beta", "--json"),
        ("replays", "list", "-w", "beta", "--json"),
    )
    assert all(r.code == 0 for r in [*in_alpha, *in_beta]), "\n".join(map(str, in_beta))
    integrations, workflows, events = (r.json for r in in_alpha)
    assert [i["id"] for i in integrations] == [spaces.integration]
    assert integrations[0]["workspace_id"] != "default"
    assert [w["id"] for w in workflows] == [spaces.workflow]
    assert [e["id"] for e in events] == [spaces.event]
    assert [r.json for r in in_beta] == [[], [], [], [], []]
    default = run_calflow(spaces.path, "integrations", "list", "--json")
    assert default.code == 0 and default.json == []  # nothing leaked into 'default' either


def test_another_workspace_cannot_show_or_change_it(spaces: Spaces) -> None:
    shown, changed, removed, workflow, event, run = run_many(
        spaces.path,
        ("integrations", "show", spaces.integration, "-w", "beta"),
        ("integrations", "update", "main", "-w", "beta", "--set", "webhook_signature=standard"),
        ("integrations", "remove", "main", "-w", "beta"),
        ("workflows", "disable", spaces.workflow, "-w", "beta"),
        ("events", "show", spaces.event, "-w", "beta"),
        ("actions", "run", "cal_com", "GetBooking", "-i", "main", "-w", "beta",
         "--input", '{"uid": "x"}'),
    )  # fmt: skip
    _clear(shown, f"no integration named or with id {spaces.integration!r} in workspace 'beta'")
    _clear(changed, "no integration named or with id 'main' in workspace 'beta'")
    _clear(removed, "no integration named or with id 'main' in workspace 'beta'")
    _clear(workflow, f"no workflow {spaces.workflow!r} in workspace 'beta'")
    _clear(event, f"no event {spaces.event!r} in workspace 'beta'")
    _clear(run, "no integration named or with id 'main' in workspace 'beta'")
    still = run_calflow(spaces.path, "integrations", "show", "main", "-w", "alpha", "--json")
    assert still.code == 0 and still.json["id"] == spaces.integration


def test_the_environment_names_the_workspace_and_the_option_wins(spaces: Spaces) -> None:
    env = {"CALFLOW_WORKSPACE": "alpha"}
    from_env = run_calflow(spaces.path, "integrations", "list", "--json", env=env)
    overridden = run_calflow(spaces.path, "events", "list", "-w", "beta", "--json", env=env)
    assert from_env.code == overridden.code == 0, f"{from_env}\n{overridden}"
    assert [i["id"] for i in from_env.json] == [spaces.integration]
    assert overridden.json == []
    by_id = run_calflow(spaces.path, "workflows", "list", "--json",
                        env={"CALFLOW_WORKSPACE": from_env.json[0]["workspace_id"]})  # fmt: skip
    assert [w["id"] for w in by_id.json] == [spaces.workflow]  # a workspace id works too


def test_an_unknown_workspace_says_how_to_list_them(spaces: Spaces) -> None:
    listed, from_env = run_many(
        spaces.path,
        ("integrations", "list", "-w", "gamma"),
        ("runs", "list"),
    )
    _clear(listed, "no workspace named 'gamma'", "calflow workspaces list")
    assert from_env.code == 0  # the default workspace always exists
    unknown_env = run_calflow(spaces.path, "events", "list", env={"CALFLOW_WORKSPACE": "gamma"})
    _clear(unknown_env, "no workspace named 'gamma'", "calflow workspaces create gamma")


def test_every_workspace_command_takes_the_option(tmp_path: Path) -> None:
    commands = [
        ("integrations", "add"), ("integrations", "update"), ("integrations", "list"),
        ("integrations", "show"), ("integrations", "remove"), ("actions", "run"), ("fetch",),
        ("events", "list"), ("events", "show"), ("webhooks", "register"),
        ("workflows", "apply"), ("workflows", "list"), ("workflows", "show"),
        ("workflows", "enable"), ("workflows", "disable"), ("workflows", "delete"),
        ("runs", "list"), ("runs", "show"), ("runs", "retry"), ("replay",),
        ("replays", "list"), ("replays", "show"), ("replays", "cancel"),
        ("tokens", "create"), ("tokens", "list"), ("tokens", "revoke"), ("mcp", "expose", "show"),
    ]  # fmt: skip
    helps = run_many(tmp_path, *[(*c, "--help") for c in commands])
    for command, got in zip(commands, helps, strict=True):
        assert got.code == 0, str(got)
        assert "--workspace" in got.stdout and "-w" in got.stdout, " ".join(command)
