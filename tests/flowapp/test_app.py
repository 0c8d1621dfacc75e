"""calflow.flowapp.app and registry: lookups, declaration problems, credentials, discovery."""

from __future__ import annotations

import json

import pytest

from calflow.errors import ConfigError, FieldError, NotFoundError, ValidationError
from calflow.flowapp import App, Registry, default_registry
from calflow.flowapp.action import Action

from .fixture_app import APP
from .fixture_app.actions import Behave, Contact, Echo, Pick
from .fixture_app.broken import (
    DuplicatePorts,
    InvalidSchema,
    LooseTwin,
    MissingSchema,
    NoErrorPort,
    NotJson,
    OnlyErrors,
    SkippedPort,
    StringDeps,
    UnknownFetcher,
    WrongDeps,
)
from .fixture_app.fetchers import Colors, Sizes


def _app(*actions: type[Action]) -> App:
    return App("broken", "Broken", "Mistakes.", actions=actions, fetchers=(Colors, Sizes))


# --- lookups --------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["Echo", "echo", "ECHO", "e_c-h_o"])
def test_action_lookup_is_exact_then_loose(key: str) -> None:
    assert APP.action(key) is Echo


@pytest.mark.parametrize("key", ["contact_person", "ContactPerson", "contact-person"])
def test_snake_case_keys_are_found_by_camel_case_too(key: str) -> None:
    assert APP.action(key) is Contact


def test_cal_com_book_meeting_is_found_as_book_meeting() -> None:
    registry = default_registry()
    assert registry.action("cal_com", "book_meeting") is registry.action("cal_com", "BookMeeting")
    assert registry.action("cal_com", "book_meeting").key == "BookMeeting"


def test_unknown_action_lists_what_exists() -> None:
    with pytest.raises(NotFoundError) as info:
        APP.action("Launch")
    msg = info.value.message
    assert "app 'fixture' has no action 'Launch'" in msg
    assert "Echo, contact_person, Behave, Strict, CallProvider, pick" in msg


def test_fetcher_lookup_and_unknown_fetcher() -> None:
    assert APP.fetcher("Colors") is Colors
    with pytest.raises(NotFoundError, match=r"no fetcher 'people' \(it has: colors, sizes\)"):
        APP.fetcher("people")
    with pytest.raises(NotFoundError, match=r"\(it has: none\)"):
        App("bare", "Bare", "No fetchers.").fetcher("x")


def test_registry_app_lookup_and_unknown_app() -> None:
    registry = Registry([APP])
    assert registry.app("fixture") is APP
    assert registry.app("FIXTURE") is APP
    assert registry.action("fixture", "behave") is Behave
    assert registry.fetcher("fixture", "sizes") is Sizes
    with pytest.raises(NotFoundError, match=r"unknown app 'calcom' \(installed: fixture\)"):
        registry.app("calcom")
    with pytest.raises(NotFoundError, match="none installed"):
        Registry().app("fixture")


def test_registry_dashes_in_app_keys_are_underscores() -> None:
    assert default_registry().app("cal-com").key == "cal_com"


def test_registry_refuses_two_apps_with_one_key() -> None:
    registry = Registry([APP])
    registry.add(APP)  # the same app again is harmless
    assert registry.apps == [APP]
    with pytest.raises(ConfigError, match="two apps share the key 'fixture'"):
        registry.add(App("fixture", "Impostor", "Same key."))


def test_registry_lists_apps_sorted_and_catalogue_is_json() -> None:
    other = App("aaa", "First", "Sorted first.")
    registry = Registry([APP, other])
    assert [a.key for a in registry.apps] == ["aaa", "fixture"]
    catalogue = json.loads(json.dumps(registry.catalogue()))
    fixture = catalogue[1]
    assert fixture["key"] == "fixture"
    assert [a["key"] for a in fixture["actions"]][:2] == ["Echo", "contact_person"]
    behave = next(a for a in fixture["actions"] if a["key"] == "Behave")
    assert [p["key"] for p in behave["ports"]] == ["success", "conflict", "error"]
    assert behave["ports"][2]["error"] is True
    assert behave["input_schema"]["required"] == ["mode"]
    assert {f["key"]: f["depends_on"] for f in fixture["fetchers"]} == {
        "colors": [],
        "sizes": ["color"],
    }
    assert [m["fields"] for m in fixture["auth_modes"]] == [["api_key"], ["token"]]
    secret = {f["key"]: f["secret"] for f in fixture["credential_fields"]}
    assert secret == {"base_url": False, "region": False, "api_key": True, "token": True}


# --- problems -------------------------------------------------------------------------


def test_the_fixture_app_has_no_problems() -> None:
    assert APP.problems() == []
    assert Registry([APP]).problems() == []


def test_problem_schema_names_a_fetcher_the_app_lacks() -> None:
    assert _app(UnknownFetcher).problems() == [
        "broken.unknown_fetcher: field 'guests[].who' names unknown fetcher 'people'"
    ]


def test_problem_depends_on_fields_the_fetcher_does_not_take() -> None:
    problems = _app(WrongDeps).problems()
    assert problems == [
        "broken.wrong_deps: field 'size' depends on ['shape'] which fetcher 'sizes' does not take",
        "broken.wrong_deps: field 'color' depends on ['size'] which fetcher 'colors' does not take",
    ]


def test_a_single_depends_on_string_is_one_field() -> None:
    assert _app(StringDeps).problems() == []


def test_problem_duplicate_ports_and_no_error_port() -> None:
    assert _app(DuplicatePorts).problems() == [
        "broken.duplicate_ports: duplicate port keys ['success', 'success', 'error']"
    ]
    assert _app(NoErrorPort).problems() == ["broken.no_error_port: declares no error port"]


def test_problem_no_success_port_and_a_port_named_skipped() -> None:
    assert _app(OnlyErrors).problems() == [
        "broken.only_errors: declares no success (non-error) port"
    ]
    assert OnlyErrors.success_port() is None
    assert _app(SkippedPort).problems() == [
        "broken.skipped_port: port 'skipped' is reserved (a workflow step's route when the "
        "step is skipped)"
    ]


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        (NotJson, "not valid JSON"),
        (InvalidSchema, "not a valid JSON Schema"),
        (MissingSchema, "not found"),
    ],
)
def test_problem_schema_that_does_not_load(action: type[Action], reason: str) -> None:
    problems = _app(action).problems()
    assert len(problems) == 1
    assert problems[0].startswith(f"broken.{action.key}: schema does not load: ")
    assert reason in problems[0]


def test_problem_action_keys_that_collide_when_looked_up() -> None:
    app = _app(Pick, LooseTwin)
    assert app.problems() == [
        "broken: action keys ['Pick', 'pick'] are the same key when looked up"
    ]


def test_registry_problems_gather_every_app() -> None:
    registry = Registry([APP, _app(NoErrorPort)])
    assert registry.problems() == ["broken.no_error_port: declares no error port"]


# --- credentials ----------------------------------------------------------------------


def test_split_values_separates_config_from_secrets() -> None:
    config, secrets = APP.split_values({"region": "eu", "api_key": "k1", "token": None})
    assert config == {"region": "eu"}
    assert secrets == {"api_key": "k1"}
    assert APP.secret_keys == frozenset({"api_key", "token"})


def test_split_values_rejects_unknown_fields() -> None:
    with pytest.raises(ValidationError) as info:
        APP.split_values({"region": "eu", "apikey": "x", "zone": "y"})
    exc = info.value
    assert exc.message == "app 'fixture' has no credential field 'apikey', 'zone'"
    assert [(e.path, e.rule) for e in exc.errors] == [("apikey", "unknown"), ("zone", "unknown")]
    assert "known: base_url, region, api_key, token" in exc.errors[0].message


@pytest.mark.parametrize(
    "values",
    [
        {"api_key": "k"},
        {"token": "t"},
        {"api_key": "k", "token": "t", "region": "eu"},
    ],
)
def test_check_credentials_accepts_any_one_auth_mode(values: dict[str, str]) -> None:
    APP.check_credentials(values)


@pytest.mark.parametrize("values", [{}, {"region": "eu"}, {"api_key": ""}, {"token": None}])
def test_check_credentials_needs_one_auth_mode(values: dict[str, str | None]) -> None:
    with pytest.raises(ValidationError) as info:
        APP.check_credentials(values)
    assert info.value.message == "credentials for 'fixture' are incomplete"
    assert info.value.errors == [
        FieldError(
            "", "give the fields of one way to sign in: API key (api_key) or Token (token)", "auth"
        )
    ]


def test_check_credentials_required_fields_without_default() -> None:
    from calflow.flowapp import CredentialField

    app = App(
        "sms",
        "SMS",
        "Required fields.",
        credential_fields=(
            CredentialField("sid", "Account SID", required=True),
            CredentialField("region", "Region", required=True, default="us1"),
            CredentialField("token", "Token", secret=True, required=True),
        ),
    )
    with pytest.raises(ValidationError) as info:
        app.check_credentials({"sid": "", "token": "t"})
    assert info.value.errors == [FieldError("sid", "is required", "required")]
    app.check_credentials({"sid": "AC1", "token": "t"})


# --- discovery ------------------------------------------------------------------------


def test_entry_point_discovery_finds_cal_com() -> None:
    from calflow.apps.cal_com import APP as CAL_COM

    registry = Registry.discover()
    assert "cal_com" in [a.key for a in registry.apps]
    assert registry.app("cal_com") is CAL_COM


def test_default_registry_is_one_discovered_registry() -> None:
    assert default_registry() is default_registry()
    assert "cal_com" in [a.key for a in default_registry().apps]
