"""Generated contract tests: every installed app (``default_registry()``) keeps the rules.

New apps registered under the ``calflow.apps`` entry points are covered automatically.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from calflow.errors import ValidationError
from calflow.flowapp import App, default_registry
from calflow.flowapp.action import Action, DataFetcher
from calflow.flowapp.schema import closure, iter_fields, open_objects

APPS = default_registry().apps
ACTIONS = [pytest.param(app, a, id=f"{app.key}.{a.key}") for app in APPS for a in app.actions]
FETCHERS = [pytest.param(app, f, id=f"{app.key}.{f.key}") for app in APPS for f in app.fetchers]


def _app_id(app: App) -> str:
    return app.key


def test_there_are_apps_to_check() -> None:
    assert APPS, "no app is installed under the calflow.apps entry points"


@pytest.mark.parametrize("app", APPS, ids=_app_id)
def test_app_declares_no_problems(app: App) -> None:
    assert app.problems() == []


@pytest.mark.parametrize("app", APPS, ids=_app_id)
def test_app_describe_is_json_serialisable(app: App) -> None:
    described = app.describe()
    assert json.loads(json.dumps(described)) == described
    assert described["key"] == app.key and described["name"]


@pytest.mark.parametrize("app", APPS, ids=_app_id)
def test_app_keys_are_unique_even_when_looked_up_loosely(app: App) -> None:
    assert len({a.key for a in app.actions}) == len(app.actions)
    assert len({f.key for f in app.fetchers}) == len(app.fetchers)
    for action in app.actions:
        assert app.action(action.key) is action
    for fetcher in app.fetchers:
        assert app.fetcher(fetcher.key) is fetcher


@pytest.mark.parametrize("app", APPS, ids=_app_id)
def test_app_auth_modes_name_declared_credential_fields(app: App) -> None:
    fields = {f.key for f in app.credential_fields}
    assert len(fields) == len(app.credential_fields)
    for mode in app.auth_modes:
        assert set(mode.fields) <= fields, mode


@pytest.mark.parametrize(("app", "action"), ACTIONS)
def test_action_schema_is_a_valid_draft_2020_12_object_schema(
    app: App, action: type[Action]
) -> None:
    schema = action.input_schema().schema
    Draft202012Validator.check_schema(schema)
    assert schema.get("type") == "object"


@pytest.mark.parametrize(("app", "action"), ACTIONS)
def test_action_declares_an_error_port_and_unique_ports(app: App, action: type[Action]) -> None:
    keys = [p.key for p in action.ports]
    assert len(set(keys)) == len(keys)
    assert any(p.error for p in action.ports)
    assert action.port(keys[0]) is action.ports[0]


@pytest.mark.parametrize(("app", "action"), ACTIONS)
def test_action_has_a_success_port_and_leaves_skipped_to_workflows(
    app: App, action: type[Action]
) -> None:
    success = action.success_port()
    port = action.port(success) if success else None
    assert port is not None and not port.error
    assert action.port("skipped") is None


def test_the_success_port_is_success_or_the_first_answer() -> None:
    registry = default_registry()
    assert registry.action("twilio", "SendSms").success_port() == "sent"
    assert registry.action("email", "SendEmail").success_port() == "sent"
    assert registry.action("cal_com", "CancelBooking").success_port() == "success"


@pytest.mark.parametrize(("app", "action"), ACTIONS)
def test_action_declaration_is_complete(app: App, action: type[Action]) -> None:
    assert action.key and action.name and action.description
    assert action.kind in {"read", "write", "destructive"}
    described = action.describe()
    assert json.loads(json.dumps(described)) == described


@pytest.mark.parametrize(("app", "action"), ACTIONS)
def test_every_fetcher_a_schema_names_exists(app: App, action: type[Action]) -> None:
    keys = {f.key for f in app.fetchers}
    for path, sub in iter_fields(action.input_schema().schema):
        if "x-fetcher" not in sub:
            continue
        fetcher = sub["x-fetcher"]
        assert fetcher in keys, f"{path} names {fetcher!r}"
        deps = set(app.fetcher(fetcher).depends_on)
        assert set(sub.get("x-fetcher-depends-on", [])) <= deps, path


@pytest.mark.parametrize(("app", "action"), ACTIONS)
def test_action_schema_defaults_satisfy_their_own_field(app: App, action: type[Action]) -> None:
    schema = action.input_schema().schema
    for path, sub in iter_fields(schema):
        if "default" in sub:
            # nested $refs in the field resolve against the root's $defs
            field = {**sub, "$defs": schema.get("$defs", {})}
            errors = list(Draft202012Validator(field).iter_errors(sub["default"]))
            assert not errors, f"{path}: default {sub['default']!r} is invalid: {errors[0].message}"


@pytest.mark.parametrize(("app", "fetcher"), FETCHERS)
def test_fetcher_declaration_is_complete(app: App, fetcher: type[DataFetcher]) -> None:
    assert fetcher.key and fetcher.name
    assert isinstance(fetcher.depends_on, tuple)
    assert json.loads(json.dumps(fetcher.describe())) == fetcher.describe()


# --- closed schemas: what an action or fetcher does not declare is refused -------------

UNKNOWN = "zz_not_a_field"


def _refusal(schema: Any, data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as err:
        schema.prepare(data)
    return [(e.path, e.rule) for e in err.value.errors]


@pytest.mark.parametrize(("app", "action"), ACTIONS)
def test_action_schema_is_closed_at_every_object(app: App, action: type[Action]) -> None:
    schema = action.input_schema()
    assert open_objects(schema.schema) == [], "objects that admit undeclared fields"
    for variant in schema._variant_validators:  # the root with one variant merged in
        assert variant.schema.get("additionalProperties") is False or closure(variant.schema)


@pytest.mark.parametrize(("app", "action"), ACTIONS)
def test_an_undeclared_input_field_is_refused_by_name(app: App, action: type[Action]) -> None:
    refused = _refusal(action.input_schema(), {UNKNOWN: "x"})
    assert (UNKNOWN, "additionalProperties") in refused


@pytest.mark.parametrize(("app", "fetcher"), FETCHERS)
def test_fetcher_context_schema_is_closed_and_requires_its_dependencies(
    app: App, fetcher: type[DataFetcher]
) -> None:
    schema = fetcher.context_schema().schema
    Draft202012Validator.check_schema(schema)
    assert schema.get("type") == "object"
    assert open_objects(schema) == []
    assert set(fetcher.depends_on) <= set(schema.get("required", []))
    assert set(fetcher.depends_on) <= set(schema.get("properties", {}))
    assert fetcher.describe()["context_schema"] == schema


@pytest.mark.parametrize(("app", "fetcher"), FETCHERS)
def test_an_undeclared_context_key_is_refused_by_name(app: App, fetcher: type[DataFetcher]) -> None:
    refused = _refusal(fetcher.context_schema(), {UNKNOWN: "x"})
    assert (UNKNOWN, "additionalProperties") in refused
