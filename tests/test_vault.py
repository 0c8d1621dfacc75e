"""calflow.vault: encryption, key sources, key file, rotation."""

from __future__ import annotations

import logging
import stat
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from calflow.db import IntegrationRow, open_engine
from calflow.errors import ConfigError
from calflow.integrations import IntegrationStore
from calflow.keys.ring import KeyRing
from calflow.keys.rotation import KeyContext, rotate
from calflow.settings import Settings
from calflow.vault import ENV_SOURCE, KEY_FILE_NAME, Vault, key_id
from db_fixtures import clean_calflow_env, sqlite_url

__all__ = ["clean_calflow_env", "sqlite_url"]

SECRET = "sk_live_d0-not-leak-7f3a"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_encrypt_decrypt_roundtrip() -> None:
    vault = Vault([Vault.generate_key()])
    token = vault.encrypt_json({"api_key": SECRET, "other": "ü✓"})
    assert SECRET not in token
    assert vault.decrypt_json(token) == {"api_key": SECRET, "other": "ü✓"}
    assert vault.decrypt_json(vault.encrypt_json({})) == {}


def test_wrong_key_is_a_clear_config_error_without_the_token() -> None:
    token = Vault([Vault.generate_key()]).encrypt_json({"api_key": SECRET})
    with pytest.raises(ConfigError, match="key is wrong or missing") as info:
        Vault([Vault.generate_key()]).decrypt_json(token)
    assert token not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or token not in str(info.value.__context__)


@pytest.mark.parametrize("garbage", ["", "not-a-token", "é", "gAAAA" + "x" * 80])
def test_garbage_token_is_a_config_error(garbage: str) -> None:
    with pytest.raises(ConfigError, match="wrong or missing"):
        Vault([Vault.generate_key()]).decrypt_json(garbage)


def test_non_object_payload_is_malformed() -> None:
    key = Vault.generate_key()
    token = Fernet(key).encrypt(b"[1, 2]").decode()
    with pytest.raises(ConfigError, match="malformed"):
        Vault([key]).decrypt_json(token)


def test_encrypt_refuses_non_string_values() -> None:
    with pytest.raises(TypeError, match="'n'") as info:
        Vault([Vault.generate_key()]).encrypt_json({"n": 12345})  # type: ignore[dict-item]
    assert "12345" not in str(info.value)


def test_invalid_env_key_names_its_position_not_its_value() -> None:
    good = Vault.generate_key()
    with pytest.raises(ConfigError, match="#2") as info:
        Vault.from_settings(Settings(secret_keys=f"{good},not-a-real-key"))
    assert "not-a-real-key" not in str(info.value)
    assert good not in str(info.value)


def test_env_keys_first_encrypts_all_decrypt(tmp_path: Path) -> None:
    old, new = Vault.generate_key(), Vault.generate_key()
    old_token = Vault([old]).encrypt_json({"a": "1"})
    vault = Vault.from_settings(Settings(home=tmp_path, secret_keys=f" {new} , {old} ,"))
    assert vault.keys_source == ENV_SOURCE
    assert vault.key_file is None
    assert vault.decrypt_json(old_token) == {"a": "1"}
    assert Vault([new]).decrypt_json(vault.encrypt_json({"b": "2"})) == {"b": "2"}
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_key_file_generated_once_with_mode_0600(tmp_path: Path) -> None:
    home = tmp_path / "home" / "calflow"
    vault = Vault.from_settings(Settings(home=home))
    path = home / KEY_FILE_NAME
    assert vault.keys_source == str(path)
    assert vault.key_file == path
    assert _mode(path) == 0o600
    content = path.read_text()
    assert len(content.splitlines()) == 1
    token = vault.encrypt_json({"k": "v"})
    again = Vault.from_settings(Settings(home=home))
    assert path.read_text() == content
    assert again.decrypt_json(token) == {"k": "v"}
    assert [p.name for p in home.iterdir()] == [KEY_FILE_NAME]


def test_key_file_created_once_under_concurrency(tmp_path: Path) -> None:
    vaults: list[Vault] = []
    barrier = threading.Barrier(8)

    def load() -> None:
        barrier.wait()
        vaults.append(Vault.from_settings(Settings(home=tmp_path)))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    token = vaults[0].encrypt_json({"k": "v"})
    assert all(v.decrypt_json(token) == {"k": "v"} for v in vaults)
    assert len((tmp_path / KEY_FILE_NAME).read_text().splitlines()) == 1


def test_loose_key_file_permissions_are_repaired(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = Vault.generate_key()
    path = tmp_path / KEY_FILE_NAME
    path.write_text(f"# calflow keys\n{key}\n")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="calflow.vault"):
        vault = Vault.from_settings(Settings(home=tmp_path))
    assert _mode(path) == 0o600
    assert "readable by others" in caplog.text
    assert key not in caplog.text
    assert Vault([key]).decrypt_json(vault.encrypt_json({"a": "b"})) == {"a": "b"}


def test_empty_key_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE_NAME).write_text("\n")
    (tmp_path / KEY_FILE_NAME).chmod(0o600)
    with pytest.raises(ConfigError, match="holds no keys"):
        Vault.from_settings(Settings(home=tmp_path))


def test_rotate_token_keeps_old_tokens_readable() -> None:
    old, new = Vault.generate_key(), Vault.generate_key()
    token = Vault([old]).encrypt_json({"a": SECRET})
    rotated_vault = Vault([new, old])
    assert rotated_vault.decrypt_json(token) == {"a": SECRET}
    rotated = rotated_vault.rotate_token(token)
    assert Vault([new]).decrypt_json(rotated) == {"a": SECRET}
    with pytest.raises(ConfigError):
        Vault([old]).decrypt_json(rotated)


def test_repr_shows_no_key(tmp_path: Path) -> None:
    key = Vault.generate_key()
    vault = Vault([key])
    assert key not in repr(vault)
    assert "keys=1" in repr(vault)


def _tokens(settings: Settings) -> list[str]:
    with open_engine(settings).connect() as conn:
        return list(conn.execute(select(IntegrationRow.secrets).order_by("name")).scalars())


def test_rotate_with_key_file_and_no_process_running(tmp_path: Path, sqlite_url: str) -> None:
    settings = Settings(home=tmp_path)
    store = IntegrationStore.default(settings)
    store.add("cal_com", "a", {}, {"api_key": SECRET})
    store.add("twilio", "b", {"sid": "AC1"}, {"token": "tok"})
    other_workspace = IntegrationStore(store._engine, Vault.from_settings(settings), "acme")
    other_workspace.add("http", "c", {}, {"bearer": "x"})
    path = tmp_path / KEY_FILE_NAME
    old_key = path.read_text().strip()
    stale_vault = Vault(ring=KeyRing.from_file(path))  # another process's view of the file

    result = rotate(KeyContext.open(settings))

    assert result.total == 3
    assert result.keys_source == str(path)
    assert result.new_secret_keys is None
    keys = path.read_text().split()
    assert len(keys) == 2 and keys[1] == old_key
    assert result.key_id == key_id(keys[0]) and result.previous == key_id(old_key)
    assert _mode(path) == 0o600
    tokens = _tokens(settings)
    only_new = Vault([keys[0]])
    assert sorted((_secrets(only_new.decrypt_json(t)) for t in tokens), key=str) == sorted(
        [{"api_key": SECRET}, {"token": "tok"}, {"bearer": "x"}], key=str
    )
    # A process that loaded the keys before the rotation re-reads the file.
    assert stale_vault.decrypt_json(tokens[0]) == only_new.decrypt_json(tokens[0])
    assert IntegrationStore.default(settings).get("a").value("api_key") == SECRET


def _secrets(stored: dict[str, object]) -> dict[str, object]:
    """An integration's stored secrets, without the target they are bound to."""
    return {k: v for k, v in stored.items() if k != "_bound_to"}


def test_rotate_with_env_keys_and_no_process_running(tmp_path: Path, sqlite_url: str) -> None:
    old = Vault.generate_key()
    settings = Settings(home=tmp_path, secret_keys=old)
    IntegrationStore.default(settings).add("cal_com", "a", {}, {"api_key": SECRET})

    result = rotate(KeyContext.open(settings))

    assert result.total == 1
    assert result.keys_source == ENV_SOURCE
    assert result.new_secret_keys is not None
    new_list = result.new_secret_keys.get_secret_value()
    new_key, kept = new_list.split(",")
    assert kept == old and new_key != old
    assert new_key not in repr(result) and old not in repr(result)
    assert not (tmp_path / KEY_FILE_NAME).exists()
    (token,) = _tokens(settings)
    assert _secrets(Vault([new_key]).decrypt_json(token)) == {"api_key": SECRET}
    rotated = Settings(home=tmp_path, secret_keys=new_list)
    assert IntegrationStore.default(rotated).get("a").value("api_key") == SECRET


def test_rotate_aborts_cleanly_on_an_unreadable_row(tmp_path: Path, sqlite_url: str) -> None:
    settings = Settings(home=tmp_path)
    store = IntegrationStore.default(settings)
    store.add("cal_com", "good", {}, {"api_key": SECRET})
    foreign = IntegrationStore(store._engine, Vault([Vault.generate_key()]))
    foreign.add("cal_com", "foreign", {}, {"api_key": "x"})
    before = _tokens(settings)
    key_file = (tmp_path / KEY_FILE_NAME).read_text()

    with pytest.raises(ConfigError, match="1 stored secret opens with none of this command's keys"):
        rotate(KeyContext.open(settings))

    assert _tokens(settings) == before
    assert (tmp_path / KEY_FILE_NAME).read_text() == key_file
    assert store.get("good").value("api_key") == SECRET
