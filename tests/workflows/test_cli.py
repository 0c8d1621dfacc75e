"""``calflow workflows …`` and ``calflow runs …`` as a person runs them.

The key paths run the real ``calflow`` command in a subprocess (``run_calflow``: exit code,
no traceback); the rest call the same ``main()`` in-process (``calflow`` fixture), which
keeps the suite fast.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from calflow.db.engine import open_engine, reset_engines
from calflow.settings import Settings, get_settings
from calflow.workflows.definition import schema
from calflow.workflows.runs import RunStore
from calflow.workflows.store import WorkflowStore
from cli.conftest import Result, run_calflow, run_many

from ._support import workflow_doc

pytestmark = pytest.mark.slow

A_YAML = """\
name: a-flow
description: reminder
trigger:
  kinds: created
steps:
  - id: get
    action: cal_com.GetBooking
    input:
      bookingUid: "{{ booking.uid }}"
    on:
      not_found: end
"""

BAD_JSON = {
    "name": "b-flow",
    "trigger": {"kinds": ["cancelled"]},
    "steps": [
        {
            "id": "get",
            "action": "cal_com.GetBooking",
            "input": {"bookingUid": "{{ steps.later.data }}"},
            "on": {"nope": "end", "success": "get"},
        }
    ],
}

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


@contextmanager
def seeded(home: Path) -> Iterator[tuple[WorkflowStore, RunStore]]:
    """The stores of ``home``'s database, opened in-process (engines reset afterwards)."""
    try:
        engine = open_engine(Settings(home=home))
        yield WorkflowStore(engine), RunStore(engine)
    finally:
        reset_engines()


Calflow = Callable[..., Result]


@pytest.fixture
def calflow(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Calflow:
    """``calflow(home, *args)``: ``main(args)`` in this process with ``CALFLOW_HOME=home``."""
    with warnings.catch_warnings():  # typer 0.20 imports click helpers click deprecates
        warnings.filterwarnings(
            "ignore", r"'click\.utils\.get_\w+_stream' is deprecated", DeprecationWarning
        )
        from calflow.cli.main import main

    def run(home: Path, *args: str) -> Result:
        monkeypatch.setenv("CALFLOW_HOME", str(home))
        monkeypatch.setenv("COLUMNS", "200")  # Rich reads it on each print: no wrapping
        get_settings.cache_clear()
        capsys.readouterr()
        try:
            code = main(list(args))
        finally:
            get_settings.cache_clear()
            reset_engines()
        out, err = capsys.readouterr()
        return Result(tuple(args), code, out, err)

    return run


def ok(result: Result) -> Result:
    assert result.code == 0, str(result)
    return result


def usage_error(result: Result, *needles: str) -> None:
    """Exit 2, a clear one-line error on stderr, nothing on stdout, each needle shown."""
    assert result.code == 2, str(result)
    assert result.stdout == "", str(result)
    assert result.err.startswith("error ("), str(result)
    for needle in needles:
        assert needle in result.err, f"{needle!r} not in {result.err!r}"


def test_apply_checks_every_file_before_applying_any(tmp_path: Path, calflow: Calflow) -> None:
    home, flows = tmp_path / "home", tmp_path / "flows"
    flows.mkdir()
    (flows / "a.yaml").write_text(A_YAML)
    (flows / "b.json").write_text(json.dumps(BAD_JSON))
    (flows / "c.yml").write_text(A_YAML.replace("a-flow", "c-flow"))
    (flows / "notes.txt").write_text("not a workflow")

    refused = run_calflow(home, "workflows", "apply", str(flows))
    usage_error(
        refused,
        f"{flows / 'b.json'}: workflow 'b-flow' is invalid",
        "steps.0.on.nope: cal_com.GetBooking has no port 'nope'",
        "steps.0.on.success: routes back to 'get'",
        "steps.0.input.bookingUid: no step 'later' before this one",
    )
    assert ok(calflow(home, "workflows", "list", "--json")).json == []  # a-flow not applied

    (flows / "b.json").unlink()
    applied = ok(calflow(home, "workflows", "apply", str(flows), "--json")).json
    assert [(r["name"], r["result"], r["version"]) for r in applied] == [
        ("a-flow", "created", 1),
        ("c-flow", "created", 1),
    ]
    assert all(r["id"].startswith("wf_") for r in applied)

    (flows / "a.yaml").write_text(A_YAML.replace("kinds: created", "kinds: [created, paid]"))
    again = ok(run_calflow(home, "workflows", "apply", str(flows / "a.yaml"), str(flows / "c.yml")))
    assert again.stdout.split("\n")[:2] == [
        f"updated: a-flow ({applied[0]['id']}, version 2)",
        f"unchanged: c-flow ({applied[1]['id']}, version 1)",
    ]
    with seeded(home) as (wf, _):
        a = wf.get("a-flow")
        assert a.definition.trigger.kinds == ("created", "paid")
        assert a.definition.steps[0].on == {"not_found": "end"}  # `on:` read as a key


def test_apply_refuses_bad_input_with_exit_2(tmp_path: Path, calflow: Calflow) -> None:
    home = tmp_path / "home"
    (tmp_path / "bad.yaml").write_text("name: a-flow\ntrigger: [x\n")
    (tmp_path / "schema.yaml").write_text(A_YAML.replace("bookingUid", "b").replace("on:", "at:"))
    (tmp_path / "empty").mkdir()
    bad = run_calflow(home, "workflows", "apply", str(tmp_path / "bad.yaml"))
    invalid, missing, empty, shown = (
        calflow(home, *args)
        for args in [
            ["workflows", "apply", str(tmp_path / "schema.yaml"), "--json"],
            ["workflows", "apply", str(tmp_path / "missing.yaml")],
            ["workflows", "apply", str(tmp_path / "empty")],
            ["workflows", "schema"],
        ]
    )
    usage_error(bad, "(VALIDATION_ERROR)", "bad.yaml is not valid YAML or JSON at line 3")
    usage_error(invalid, "schema.yaml: workflow 'a-flow' is invalid", "steps.0.at.not_found:")
    usage_error(missing, "cannot read", "missing.yaml")
    usage_error(empty, "holds no .yaml, .yml or .json workflow files")
    assert ok(shown).json == schema()


def test_list_show_enable_disable_delete(tmp_path: Path, calflow: Calflow) -> None:
    home = tmp_path / "home"
    with seeded(home) as (wf, _):
        first, _ = wf.apply(workflow_doc("remind", trigger={"kinds": ["created", "paid"]}))
        wf.apply(workflow_doc("alpha"))
    listed = calflow(home, "workflows", "list", "--json")
    by_id = calflow(home, "workflows", "show", first.id, "--json")
    table = calflow(home, "workflows", "list")
    assert [(w["name"], w["enabled"], w["version"]) for w in ok(listed).json] == [
        ("alpha", True, 1),
        ("remind", True, 1),
    ]
    shown = ok(by_id).json
    assert shown == listed.json[1]
    assert shown["definition"] == workflow_doc("remind", trigger={"kinds": ["created", "paid"]})
    assert shown["steps"] == ["get"] and shown["id"] == first.id
    assert "remind" in ok(table).stdout and "created,paid" in table.stdout

    disabled = ok(calflow(home, "workflows", "disable", "remind", "--json")).json
    assert (disabled["enabled"], disabled["version"]) == (False, 1)
    assert ok(calflow(home, "workflows", "enable", first.id)).stdout.strip() == ("enabled: remind")
    deleted = ok(calflow(home, "workflows", "delete", "remind", "--json")).json
    assert deleted == {"deleted": "remind", "id": first.id, "name": "remind",
                       "runs_cancelled": 0, "runs_kept": 0}  # fmt: skip

    after = calflow(home, "workflows", "list", "--json")
    show_gone = run_calflow(home, "workflows", "show", "remind")
    assert [(w["name"], w["enabled"]) for w in ok(after).json] == [("alpha", True)]
    usage_error(show_gone, "(NOT_FOUND): no workflow 'remind'")


def test_disable_says_runs_wait_and_delete_cancels_them_or_keeps_them(
    tmp_path: Path, calflow: Calflow
) -> None:
    home = tmp_path / "home"
    with seeded(home) as (wf, runs):
        remind, _ = wf.apply(workflow_doc("remind"))
        other, _ = wf.apply(workflow_doc("other"))
        seeds = [
            ("run_w1", remind.id, "waiting"),
            ("run_w2", remind.id, "queued"),
            ("run_done", remind.id, "succeeded"),
            ("run_o", other.id, "waiting"),
        ]
        for n, (run_id, workflow_id, status) in enumerate(seeds):
            runs.create(
                run_id,
                workflow_id=workflow_id,
                workflow_name="x",
                workflow_version=1,
                event_id=f"ev_{n}",
                provider="cal_com",
                booking_uid=f"b{n}",
            )
            runs.update(run_id, status=status, next_due_at=T0 + timedelta(days=1))
        runs.update("run_w1", current_step="get")  # fmt: skip

    disabled = ok(calflow(home, "workflows", "disable", "remind"))
    assert disabled.stdout.strip() == (
        "disabled: remind (2 runs already started keep waiting and run when due; "
        "delete the workflow to cancel them)"
    )
    as_json = ok(calflow(home, "workflows", "enable", "remind", "--json")).json
    assert (as_json["enabled"], as_json["runs_waiting"]) == (True, 2)
    kept = ok(calflow(home, "workflows", "delete", "other", "--keep-runs", "--json")).json
    assert (kept["runs_cancelled"], kept["runs_kept"]) == (0, 1)
    deleted = ok(run_calflow(home, "workflows", "delete", "remind"))
    assert deleted.stdout.strip() == "deleted: remind (2 runs cancelled: workflow deleted)"

    with seeded(home) as (_, runs):
        after = {r["id"]: r for r in runs.list()}
        trace = runs.get("run_w1")["steps"]
    assert {k: (r["status"], r["cancel_reason"]) for k, r in after.items()} == {
        "run_w1": ("cancelled", "workflow deleted"),
        "run_w2": ("cancelled", "workflow deleted"),
        "run_done": ("succeeded", None),
        "run_o": ("waiting", None),
    }
    assert after["run_w1"]["next_due_at"] is None and after["run_w1"]["finished_at"]
    assert [(s["step"], s["status"], s["error"]) for s in trace] == [
        ("get", "cancelled", {"reason": "workflow deleted"})
    ]
    usage_error(run_calflow(home, "workflows", "delete", "remind"), "no workflow 'remind'")


def test_runs_list_and_show(tmp_path: Path, calflow: Calflow) -> None:
    home = tmp_path / "home"
    seeds = [
        # (id, workflow, status, booking): run_x, run_y and run_z each fail one filter only
        ("run_a", "remind", "waiting", "b1"),
        ("run_x", "follow", "waiting", "b1"),
        ("run_y", "remind", "queued", "b1"),
        ("run_z", "remind", "waiting", "b2"),
        ("run_new", "remind", "waiting", "b1"),
        ("run_dead", "follow", "failed", "b3"),
    ]
    with seeded(home) as (_, runs):
        for n, (run_id, name, status, booking) in enumerate(seeds):
            runs.create(run_id, workflow_id=f"wf_{name}", workflow_name=name,
                        workflow_version=1, event_id=f"ev_{n}", provider="cal_com",
                        booking_uid=booking)  # fmt: skip
            runs.update(run_id, status=status, created_at=T0 + timedelta(minutes=n))
        runs.update("run_a", current_step="sms", next_due_at=T0)
        runs.update("run_dead", dead=1, error={"code": "PROVIDER_ERROR"})
        runs.record_step("run_dead", "get", 1, status="failed", port="error",
                         input={"bookingUid": "b3", "api_key": "********"},
                         error={"code": "PROVIDER_ERROR"})  # fmt: skip
    every, missing = run_many(home, ["runs", "list", "--json"], ["runs", "show", "run_nope"])
    filtered, limited, dead, shown, table = (
        calflow(home, *args)
        for args in [
            ["runs", "list", "--workflow", "remind", "--status", "waiting", "--booking", "b1",
             "--json"],
            ["runs", "list", "--workflow", "wf_remind", "--status", "waiting", "--booking", "b1",
             "--limit", "1", "--json"],
            ["runs", "list", "--dead", "--json"],
            ["runs", "show", "run_dead", "--json"],
            ["runs", "list"],
        ]
    )  # fmt: skip

    def ids(result: Result) -> list[str]:
        return [r["id"] for r in ok(result).json]

    assert ids(every) == ["run_dead", "run_new", "run_z", "run_y", "run_x", "run_a"]
    assert ids(filtered) == ["run_new", "run_a"]
    assert ids(limited) == ["run_new"]
    assert ids(dead) == ["run_dead"]
    waiting = every.json[-1]
    assert (waiting["current_step"], waiting["status"]) == ("sms", "waiting")
    assert datetime.fromisoformat(waiting["next_due_at"]) == T0

    run = ok(shown).json
    assert (run["id"], run["workflow"], run["status"], run["dead"]) == (
        "run_dead",
        "follow",
        "failed",
        True,
    )
    assert run["error"] == {"code": "PROVIDER_ERROR"} and run["finished_at"] is not None
    assert [(s["step"], s["attempt"], s["port"]) for s in run["steps"]] == [("get", 1, "error")]
    assert run["steps"][0]["input"] == {"bookingUid": "b3", "api_key": "********"}
    usage_error(missing, "(NOT_FOUND): no run 'run_nope'")
    assert "failed (dead)" in ok(table).stdout and "run_new" in table.stdout
