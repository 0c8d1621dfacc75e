"""calflow.integrations: the store on SQLite and PostgreSQL, and keeping secrets secret."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from calflow.db import IntegrationRow, get_engine, migrate
from calflow.errors import ConfigError, NotFoundError, ValidationError
from calflow.integrations import MASK, Integration, IntegrationStore
from calflow.keys.rotation import KeyContext, rotate
from calflow.settings import Settings
from calflow.vault import Vault
from db_fixtures import clean_calflow_env, pg_database_url, pg_fresh_url, sqlite_url

__all__ = ["clean_calflow_env", "pg_database_url", "pg_fresh_url", "sqlite_url"]

SECRET = "sk_live_UNIQUE_a8f3c2e1d9"
OTHER_SECRET = "whsec_UNIQUE_55b0e4"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_fresh_url"
    engine = get_engine(str(request.getfixturevalue(fixture)))
    migrate(engine)
    yield engine


@pytest.fixture
def vault() -> Vault:
    return Vault([Vault.generate_key()])


@pytest.fixture
def store(engine: Engine, vault: Vault) -> IntegrationStore:
    return IntegrationStore(engine, vault)


def _add_cal(store: IntegrationStore, name: str = "cal main") -> Integration:
    return store.add(
        "cal_com", name, {"base_url": "https://api.cal.com", "team": 7}, {"api_key": SECRET}
    )


def test_add_and_get_by_name_and_id(store: IntegrationStore) -> None:
    added = _add_cal(store)
    assert added.id.startswith("int_") and len(added.id) == 20
    assert added.workspace_id == "default"
    assert added.created_at.tzinfo is not None and added.created_at == added.updated_at
    for key in ("cal main", added.id):
        got = store.get(key)
        assert got.id == added.id
        assert got.app_key == "cal_com"
        assert got.config == {"base_url": "https://api.cal.com", "team": 7}
        assert got.value("api_key") == SECRET
        assert got.value("team") == 7
        assert got.value("missing") is None
        assert got.created_at == added.created_at


def test_duplicate_name_is_a_config_error(store: IntegrationStore) -> None:
    _add_cal(store)
    with pytest.raises(ConfigError, match="an integration named 'cal main' already exists"):
        store.add("twilio", "cal main", {}, {"token": OTHER_SECRET})
    assert len(store.list()) == 1


def test_names_are_per_workspace(engine: Engine, vault: Vault, store: IntegrationStore) -> None:
    acme = IntegrationStore(engine, vault, workspace_id="acme")
    _add_cal(store)
    theirs = _add_cal(acme)
    assert theirs.workspace_id == "acme"
    assert [i.workspace_id for i in store.list()] == ["default"]
    with pytest.raises(NotFoundError, match="in workspace 'acme'"):
        acme.get(store.get("cal main").id)


def test_get_missing_names_what_was_asked(store: IntegrationStore) -> None:
    with pytest.raises(NotFoundError, match="'nope'"):
        store.get("nope")
    with pytest.raises(NotFoundError, match="'nope'"):
        store.update("nope", config={"a": 1})
    with pytest.raises(NotFoundError, match="'nope'"):
        store.remove("nope")


def test_list_sorted_and_filtered(store: IntegrationStore) -> None:
    store.add("twilio", "b sms", {"sid": "AC1"}, {"token": OTHER_SECRET})
    _add_cal(store, "a cal")
    store.add("twilio", "c sms", {}, {})
    assert [i.name for i in store.list()] == ["a cal", "b sms", "c sms"]
    assert [i.name for i in store.list("twilio")] == ["b sms", "c sms"]
    assert store.list("nothing") == []


def test_update_merges_moves_and_unsets(store: IntegrationStore) -> None:
    added = _add_cal(store)
    updated = store.update("cal main", config={"team": 8}, secrets={"webhook_secret": OTHER_SECRET})
    assert updated.config == {"base_url": "https://api.cal.com", "team": 8}
    assert set(updated.secrets) == {"api_key", "webhook_secret"}
    assert updated.updated_at > added.updated_at
    assert updated.created_at == added.created_at

    moved = store.update(added.id, config={"api_key": "now-public"}, unset=["base_url", "nope"])
    assert moved.config == {"team": 8, "api_key": "now-public"}
    # base_url went, so the secret not given again went with it
    assert set(moved.secrets) == set() and moved.cleared == ("webhook_secret",)

    back = store.update(added.id, secrets={"api_key": SECRET}, unset=["webhook_secret"])
    assert back.config == {"team": 8}
    assert {k: v.get_secret_value() for k, v in back.secrets.items()} == {"api_key": SECRET}
    assert store.get(added.id).value("api_key") == SECRET


def test_changing_base_url_or_host_clears_the_secrets_not_given_again(
    store: IntegrationStore,
) -> None:
    added = store.add(
        "twilio", "sms", {"base_url": "https://api.twilio.com", "account_sid": "AC1"},
        {"auth_token": SECRET, "webhook_secret": OTHER_SECRET},
    )  # fmt: skip
    assert added.secrets_for == '{"base_url": "https://api.twilio.com"}' and added.cleared == ()
    same = store.update("sms", config={"account_sid": "AC2", "base_url": "https://api.twilio.com/"})
    assert same.cleared == () and set(same.secrets) == {"auth_token", "webhook_secret"}
    moved = store.update("sms", config={"base_url": "https://evil.example"})
    assert moved.cleared == ("auth_token", "webhook_secret") and dict(moved.secrets) == {}
    assert moved.secrets_for == '{"base_url": "https://evil.example"}'
    assert store.get("sms").value("auth_token") is None and store.get("sms").cleared == ()
    # new secrets in the same update are kept (and bound to the new target); others go
    store.update("sms", secrets={"auth_token": SECRET, "webhook_secret": OTHER_SECRET})
    again = store.update("sms", config={"base_url": "https://api.twilio.com"},
                         secrets={"auth_token": "new-token-1"})  # fmt: skip
    assert again.cleared == ("webhook_secret",)
    assert store.get("sms").value("auth_token") == "new-token-1"
    assert store.get("sms").secrets_for == '{"base_url": "https://api.twilio.com"}'
    # a token refresh (secrets only) keeps everything
    assert store.update("sms", secrets={"webhook_secret": "w2"}).cleared == ()
    # the SMTP host is a target too
    store.add("email", "mail", {"host": "smtp.example.com"}, {"password": SECRET})
    assert store.update("mail", config={"host": "smtp.evil.example"}).cleared == ("password",)


def test_the_recorded_target_is_not_a_secret_field(store: IntegrationStore) -> None:
    with pytest.raises(ValidationError) as caught:
        store.add("twilio", "x", {}, {"_bound_to": "{}"})
    assert caught.value.errors[0].path == "secrets._bound_to"
    added = store.add("twilio", "y", {"base_url": "https://api.twilio.com"}, {"auth_token": "t"})
    assert set(added.secrets) == {"auth_token"} and "_bound_to" not in added.values()
    assert set(store.get("y").public_view()["secrets"]) == {"auth_token"}


def test_concurrent_updates_lose_nothing(store: IntegrationStore) -> None:
    _add_cal(store)
    errors: list[BaseException] = []

    def refresh(worker: int) -> None:
        try:
            for n in range(5):
                store.update("cal main", secrets={f"token_{worker}": f"t{worker}-{n}"})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=refresh, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    final = store.get("cal main")
    assert {k: final.value(k) for k in final.secrets} == {
        "api_key": SECRET,
        **{f"token_{w}": f"t{w}-4" for w in range(4)},
    }


def test_remove(store: IntegrationStore) -> None:
    added = _add_cal(store)
    store.add("twilio", "sms", {}, {})
    store.remove(added.id)
    assert [i.name for i in store.list()] == ["sms"]
    store.remove("sms")
    assert store.list() == []


@pytest.mark.parametrize(
    ("name", "config", "secrets", "path"),
    [
        ("  ", {}, {}, "name"),
        ("x", {"a": 1}, {"a": "s"}, "a"),
        ("x", {}, {"n": 12345}, "secrets.n"),
        ("x", {"when": object()}, {}, "config"),
    ],
)
def test_invalid_fields(
    store: IntegrationStore,
    name: str,
    config: dict[str, object],
    secrets: dict[str, str],
    path: str,
) -> None:
    with pytest.raises(ValidationError) as info:
        store.add("http", name, config, secrets)
    assert path in [e.path for e in info.value.errors]
    assert "12345" not in str(info.value)
    assert store.list() == []


def test_wrong_vault_is_a_config_error_naming_the_integration(
    engine: Engine, store: IntegrationStore
) -> None:
    _add_cal(store)
    stranger = IntegrationStore(engine, Vault([Vault.generate_key()]))
    with pytest.raises(ConfigError, match=r"'cal main'.*key is wrong or missing") as info:
        stranger.get("cal main")
    assert SECRET not in str(info.value)


def test_secrets_are_one_token_in_the_row(engine: Engine, store: IntegrationStore) -> None:
    store.add("cal_com", "x", {"base_url": "u"}, {"api_key": SECRET, "b": OTHER_SECRET})
    with engine.connect() as conn:
        row = conn.execute(select(IntegrationRow.config, IntegrationRow.secrets)).one()
    assert row.config == {"base_url": "u"}
    assert row.secrets.startswith("gAAAA")
    assert SECRET not in row.secrets and OTHER_SECRET not in row.secrets


def test_repr_str_and_public_view_hide_secrets(store: IntegrationStore) -> None:
    integration = _add_cal(store)
    for text in (repr(integration), str(integration), f"{integration}", repr(store.list())):
        assert SECRET not in text
        assert "api_key" in text
    assert SECRET not in repr(integration.secrets["api_key"])
    view = integration.public_view()
    assert view["secrets"] == {"api_key": MASK}
    assert view["app"] == "cal_com"
    assert view["config"] == {"base_url": "https://api.cal.com", "team": 7}
    assert SECRET not in json.dumps(view)
    assert view["created_at"].endswith("+00:00")


def test_integration_is_immutable(store: IntegrationStore) -> None:
    integration = _add_cal(store)
    with pytest.raises(FrozenInstanceError):
        integration.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        integration.config["team"] = 9  # type: ignore[index]
    assert isinstance(hash(integration), int)


def test_errors_never_carry_a_secret(store: IntegrationStore) -> None:
    _add_cal(store)
    with pytest.raises(ConfigError) as dup:
        store.add("cal_com", "cal main", {}, {"api_key": SECRET})
    with pytest.raises(ValidationError) as bad:
        store.add("cal_com", "y", {"api_key": 1}, {"api_key": SECRET})
    for exc in (dup.value, bad.value):
        assert SECRET not in str(exc) and SECRET not in repr(exc)
        assert SECRET not in json.dumps(exc.to_dict())
        assert exc.__cause__ is None


def test_no_secret_in_sqlite_files_or_logs(
    tmp_path: Path,
    sqlite_url: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = Settings(home=tmp_path)
    caplog.set_level(logging.DEBUG)
    store = IntegrationStore.default(settings)
    store._engine.echo = "debug"
    _add_cal(store)
    store.update("cal main", secrets={"webhook_secret": OTHER_SECRET})
    assert store.get("cal main").value("api_key") == SECRET
    store.list()
    with pytest.raises(ConfigError):
        store.add("cal_com", "cal main", {}, {"api_key": SECRET})
    rotate(KeyContext.open(settings))
    IntegrationStore.default(settings).get("cal main")

    assert "INSERT INTO integrations" in caplog.text  # echo really was on
    captured = capsys.readouterr()
    files = sorted(tmp_path.glob("calflow.db*"))
    assert any(p.name.endswith("-wal") for p in files)
    for needle in (SECRET, OTHER_SECRET):
        assert needle not in caplog.text
        assert needle not in captured.out + captured.err
        for path in files:
            assert needle.encode() not in path.read_bytes(), path
    store._engine.echo = False
