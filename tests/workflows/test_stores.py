"""WorkflowStore and RunStore on SQLite and PostgreSQL; masking and run ids."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from calflow.db.engine import open_engine, reset_engines
from calflow.errors import NotFoundError, ValidationError
from calflow.settings import Settings
from calflow.workflows.runs import MASK, RunStore, mask, run_id_for
from calflow.workflows.store import WorkflowStore

from ._support import workflow_doc

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


# --- workflows -----------------------------------------------------------------------------


def test_apply_creates_then_is_unchanged_then_updates_with_a_version_bump(engine: Engine) -> None:
    store = WorkflowStore(engine)
    created, outcome = store.apply(workflow_doc())
    assert outcome == "created" and created.version == 1 and created.enabled
    assert created.id.startswith("wf_")

    again, outcome = store.apply(workflow_doc())
    assert outcome == "unchanged" and again.version == 1 and again.id == created.id
    assert again.updated_at == created.updated_at

    changed = workflow_doc(trigger={"kinds": ["created", "rescheduled"]})
    updated, outcome = store.apply(changed)
    assert outcome == "updated" and updated.version == 2 and updated.id == created.id
    assert updated.definition.trigger.kinds == ("created", "rescheduled")
    assert updated.updated_at > created.updated_at

    disabled, outcome = store.apply({**changed, "enabled": False})
    assert outcome == "updated" and disabled.version == 3 and not disabled.enabled
    assert [w.version for w in store.list()] == [3]


def test_get_by_name_or_id_and_to_dict(engine: Engine) -> None:
    store = WorkflowStore(engine)
    stored, _ = store.apply(workflow_doc(description="by name"))
    by_name, by_id = store.get("remind"), store.get(stored.id)
    assert by_name == by_id
    assert by_name.definition.description == "by name"
    assert by_name.definition.steps[0].on == {"not_found": "end"}
    data = by_id.to_dict()
    assert data == {
        "id": stored.id,
        "name": "remind",
        "version": 1,
        "enabled": True,
        "updated_at": stored.updated_at,
        "trigger": {"kinds": ["created"]},
        "steps": ["get"],
        "definition": workflow_doc(description="by name"),
    }
    with pytest.raises(NotFoundError, match="no workflow 'missing'"):
        store.get("missing")


def test_list_set_enabled_and_delete(engine: Engine) -> None:
    store = WorkflowStore(engine)
    for name in ("zeta", "alpha", "mid"):
        store.apply(workflow_doc(name))
    assert [w.name for w in store.list()] == ["alpha", "mid", "zeta"]

    off = store.set_enabled("mid", False)
    assert off.enabled is False and off.version == 1  # a toggle is not a new version
    assert store.get("mid").enabled is False
    assert [w.name for w in store.list(enabled_only=True)] == ["alpha", "zeta"]
    assert store.set_enabled(off.id, True).enabled is True
    assert [w.name for w in store.list(enabled_only=True)] == ["alpha", "mid", "zeta"]

    gone = store.delete("alpha")
    assert gone.name == "alpha"
    with pytest.raises(NotFoundError):
        store.get("alpha")
    with pytest.raises(NotFoundError):
        store.delete("alpha")
    with pytest.raises(NotFoundError):
        store.set_enabled("alpha", True)
    assert [w.name for w in store.list()] == ["mid", "zeta"]
    # the name is free again: a new workflow with a new id
    again, outcome = store.apply(workflow_doc("alpha"))
    assert outcome == "created" and again.id != gone.id and again.version == 1


def test_an_invalid_definition_stores_nothing(engine: Engine) -> None:
    store = WorkflowStore(engine)
    store.apply(workflow_doc())
    bad = workflow_doc(steps=[{"id": "get", "action": "cal_com.Nope"}])
    with pytest.raises(ValidationError) as caught:
        store.apply(bad)
    assert [e.path for e in caught.value.errors] == ["steps.0.action"]
    assert store.get("remind").definition.steps[0].action == "GetBooking"
    assert store.get("remind").version == 1


def test_workspaces_are_separate(engine: Engine) -> None:
    mine, theirs = WorkflowStore(engine), WorkflowStore(engine, "ws_other")
    stored, _ = mine.apply(workflow_doc())
    assert theirs.list() == []
    with pytest.raises(NotFoundError):
        theirs.get(stored.id)
    with pytest.raises(NotFoundError):
        theirs.delete("remind")
    other, outcome = theirs.apply(workflow_doc(description="theirs"))
    assert outcome == "created" and other.id != stored.id
    assert mine.get("remind").definition.description == ""


@pytest.mark.postgres
def test_concurrent_applies_of_a_new_name_create_it_once(isolated_pg_url: str, tmp_path: Path):
    engine = open_engine(Settings(home=str(tmp_path), database_url=isolated_pg_url))
    try:
        store = WorkflowStore(engine)
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda _: store.apply(workflow_doc()), range(4)))
        assert sorted(outcome for _, outcome in results) == ["created"] + ["unchanged"] * 3
        assert {stored.id for stored, _ in results} == {store.get("remind").id}
        assert [w.version for w in store.list()] == [1]
    finally:
        reset_engines()


# --- runs ----------------------------------------------------------------------------------


def new_run(runs: RunStore, run_id: str, **over: str) -> bool:
    values = {
        "workflow_id": "wf_a",
        "workflow_name": "remind",
        "event_id": "ev_1",
        "provider": "cal_com",
        "booking_uid": "uid-1",
        **over,
    }
    return runs.create(run_id, workflow_version=1, **values)


def test_create_is_idempotent(engine: Engine) -> None:
    runs = RunStore(engine)
    new_run(runs, "run_1")
    runs.update("run_1", status="running")
    new_run(runs, "run_1", workflow_name="other", booking_uid="uid-2")  # no error, no change
    got = runs.get("run_1")
    assert (got["workflow"], got["booking_uid"], got["status"]) == ("remind", "uid-1", "running")
    assert len(runs.list()) == 1


def test_create_says_whether_the_run_was_new(
    engine: Engine, request: pytest.FixtureRequest
) -> None:
    runs = RunStore(engine)
    assert new_run(runs, "run_1") is True
    assert new_run(runs, "run_1", workflow_name="other", booking_uid="uid-2") is False
    got = runs.get("run_1")
    assert (got["workflow"], got["booking_uid"], got["status"]) == ("remind", "uid-1", "queued")
    assert (got["dead"], got["attempt"], got["steps"], got["finished_at"]) == (False, 1, [], None)
    assert len(runs.list()) == 1


def test_update_and_finish(engine: Engine) -> None:
    runs = RunStore(engine)
    new_run(runs, "run_1")
    due = T0 + timedelta(hours=1)
    runs.update("run_1", status="waiting", current_step="sms", next_due_at=due)
    waiting = runs.get("run_1")
    assert (waiting["status"], waiting["current_step"]) == ("waiting", "sms")
    assert datetime.fromisoformat(waiting["next_due_at"]) == due
    assert waiting["finished_at"] is None

    runs.update("run_1", status="failed", dead=1, error={"code": "X", "at": T0})
    failed = runs.get("run_1")
    assert failed["status"] == "failed" and failed["dead"] is True
    assert failed["next_due_at"] is None and failed["finished_at"] is not None
    assert failed["error"] == {"code": "X", "at": str(T0)}  # stored as JSON
    assert failed["updated_at"] >= waiting["updated_at"]


def test_record_step_and_get_lists_every_attempt_oldest_first(engine: Engine) -> None:
    runs = RunStore(engine)
    new_run(runs, "run_1")
    runs.record_step("run_1", "get", 1, status="failed", port="error",
                     input={"bookingUid": "uid-1"}, error={"code": "RETRYABLE"},
                     started_at=T0)  # fmt: skip
    runs.record_step("run_1", "get", 2, status="succeeded", port="success",
                     input={"bookingUid": "uid-1", "when": T0}, output={"data": {"n": 1}},
                     due_at=T0 + timedelta(minutes=5))  # fmt: skip
    runs.record_step("run_1", "sms", 1, status="skipped")
    new_run(runs, "run_2")
    runs.record_step("run_2", "other", 1, status="succeeded")

    steps = runs.get("run_1")["steps"]
    assert [(s["step"], s["attempt"], s["status"], s["port"]) for s in steps] == [
        ("get", 1, "failed", "error"),
        ("get", 2, "succeeded", "success"),
        ("sms", 1, "skipped", None),
    ]
    first, second, third = steps
    assert first["error"] == {"code": "RETRYABLE"} and first["output"] is None
    assert datetime.fromisoformat(first["started_at"]) == T0
    assert first["duration_ms"] > 0  # started at T0, finished now
    assert second["input"] == {"bookingUid": "uid-1", "when": str(T0)}
    assert second["output"] == {"data": {"n": 1}} and second["error"] is None
    assert datetime.fromisoformat(second["due_at"]) == T0 + timedelta(minutes=5)
    assert third["input"] is None and third["due_at"] is None
    assert third["duration_ms"] is not None and third["duration_ms"] >= 0


def test_list_filters_newest_first(engine: Engine) -> None:
    runs = RunStore(engine)
    seeds = [
        ("run_a", {"workflow_name": "remind", "workflow_id": "wf_r", "booking_uid": "b1"}),
        ("run_b", {"workflow_name": "remind", "workflow_id": "wf_r", "booking_uid": "b2"}),
        ("run_c", {"workflow_name": "follow", "workflow_id": "wf_f", "booking_uid": "b1"}),
        ("run_d", {"workflow_name": "follow", "workflow_id": "wf_f", "booking_uid": "b3"}),
    ]
    for n, (run_id, values) in enumerate(seeds):
        new_run(runs, run_id, **values)
        runs.update(run_id, created_at=T0 + timedelta(minutes=n))
    runs.update("run_b", status="succeeded")
    runs.update("run_c", status="failed", dead=1)
    runs.update("run_d", status="failed")

    def ids(**filters: object) -> list[str]:
        return [r["id"] for r in runs.list(**filters)]  # type: ignore[arg-type]

    assert ids() == ["run_d", "run_c", "run_b", "run_a"]
    assert ids(workflow="remind") == ["run_b", "run_a"]
    assert ids(workflow="wf_f") == ["run_d", "run_c"]
    assert ids(status="failed") == ["run_d", "run_c"]
    assert ids(status="queued") == ["run_a"]
    assert ids(booking_uid="b1") == ["run_c", "run_a"]
    assert ids(dead=True) == ["run_c"]
    assert ids(dead=False) == ["run_d", "run_b", "run_a"]
    assert ids(workflow="follow", dead=False) == ["run_d"]
    assert ids(limit=2) == ["run_d", "run_c"]
    assert ids(workflow="nope") == []


def test_runs_of_other_workspaces_and_unknown_ids_are_not_found(engine: Engine) -> None:
    mine, theirs = RunStore(engine), RunStore(engine, "ws_other")
    new_run(mine, "run_1")
    assert theirs.list() == []
    with pytest.raises(NotFoundError, match="no run 'run_1'"):
        theirs.get("run_1")
    with pytest.raises(NotFoundError, match="no run 'run_nope'"):
        mine.get("run_nope")


def test_active_for_booking(engine: Engine) -> None:
    runs = RunStore(engine)
    for run_id, status in [("run_q", "queued"), ("run_w", "waiting"), ("run_s", "succeeded")]:
        new_run(runs, run_id)
        runs.update(run_id, status=status)
    new_run(runs, "run_other", booking_uid="uid-2")
    new_run(runs, "run_sc", provider="savvycal")
    active = runs.active_for_booking("cal_com", "uid-1")
    assert sorted(r.id for r in active) == ["run_q", "run_w"]


def test_a_long_booking_uid_can_be_listed_by_itself(engine: Engine) -> None:
    runs = RunStore(engine)
    uid = "u" * 250
    new_run(runs, "run_long", booking_uid=uid)
    assert [r.id for r in runs.active_for_booking("cal_com", uid)] == ["run_long"]
    assert [r["id"] for r in runs.list(booking_uid=uid)] == ["run_long"]


# --- masking and run ids -------------------------------------------------------------------


def test_mask_secret_looking_keys_at_any_depth() -> None:
    value = {
        "password": "hunter2",
        "api_key": "k1",
        "apiKey": "k2",
        "X-Api-Key": "k3",
        "Authorization": "Bearer abc",
        "client_secret": "s",
        "access_token": "t",
        "signature": "sig",
        "passwd": "p",
        "empty_token": "",
        "none_secret": None,
        "to": "+33612345678",
        "nested": [{"auth": {"user": "u"}, "body": "hello"}, "plain"],
    }
    masked = mask(value)
    assert masked == {
        "password": MASK,
        "api_key": MASK,
        "apiKey": MASK,
        "X-Api-Key": MASK,
        "Authorization": MASK,
        "client_secret": MASK,
        "access_token": MASK,
        "signature": MASK,
        "passwd": MASK,
        "empty_token": "",  # nothing to hide
        "none_secret": None,
        "to": "+33612345678",
        "nested": [{"auth": MASK, "body": "hello"}, "plain"],
    }
    assert value["password"] == "hunter2"  # the input is not changed


def test_mask_known_secret_values_inside_strings() -> None:
    secret = "cal_live_0123456789abcdef"
    value = {
        "url": f"https://api.example.com/?key={secret}",
        "list": [f"{secret}{secret}", 42, None],
        "short": "abc is too short to be masked",
    }
    assert mask(value, [secret, "abc"]) == {
        "url": f"https://api.example.com/?key={MASK}",
        "list": [MASK + MASK, 42, None],
        "short": "abc is too short to be masked",
    }
    assert mask(f"x {secret}", [secret]) == f"x {MASK}"
    assert mask(f"x {secret}", None) == f"x {secret}"


def test_mask_a_secret_that_contains_another() -> None:
    short, long = "sk_1234", "sk_1234_and_more_secret"
    masked = mask({"log": f"sent {long}"}, [short, long])
    assert "more_secret" not in masked["log"]


def test_run_id_for_is_deterministic_and_distinct() -> None:
    first = run_id_for("ws_default", "cal_com:abc", "wf_1")
    assert first == run_id_for("ws_default", "cal_com:abc", "wf_1")
    assert first.startswith("run_") and len(first) == 28
    int(first[4:], 16)  # hex
    others = {
        run_id_for("ws_other", "cal_com:abc", "wf_1"),
        run_id_for("ws_default", "cal_com:abd", "wf_1"),
        run_id_for("ws_default", "cal_com:abc", "wf_2"),
        run_id_for("ws_defaul", "tcal_com:abc", "wf_1"),  # the fields are kept apart
    }
    assert len(others) == 4 and first not in others
