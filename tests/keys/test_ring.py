"""calflow.keys.ring and keyfile: key ids, the encrypting key, a changed key file re-read."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from calflow.errors import ConfigError
from calflow.keys.keyfile import KEY_FILE_NAME, read_key_file, stamp, write_key_file
from calflow.keys.ring import KeyRing, key_id
from calflow.settings import Settings
from calflow.vault import Vault, shared_ring

K1, K2, K3 = (Vault.generate_key() for _ in range(3))


def _file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / KEY_FILE_NAME
    write_key_file(path, lines)
    return path


def test_key_ids_are_short_stable_and_reveal_nothing() -> None:
    assert key_id(K1) == key_id(K1.encode()) and len(key_id(K1)) == 12
    assert len({key_id(K1), key_id(K2), key_id(K3)}) == 3
    assert key_id(K1) not in K1
    with pytest.raises(ValueError, match="not a Fernet key"):
        key_id("short")


def test_the_first_key_encrypts_unless_the_preferred_one_is_held() -> None:
    ring = KeyRing([K1, K2])
    assert ring.primary == key_id(K1)
    ring.prefer(key_id(K2))
    assert ring.primary == key_id(K2)
    assert Fernet(K2).decrypt(ring.encrypt(b"x")) == b"x"
    ring.prefer(key_id(K3))  # not held: the first key encrypts
    assert ring.primary == key_id(K1)
    assert Fernet(K1).decrypt(ring.encrypt(b"y")) == b"y"


def test_every_key_decrypts_and_key_of_names_the_one_that_opens() -> None:
    ring = KeyRing([K1, K2])
    for key in (K1, K2):
        token = Fernet(key).encrypt(b"z")
        assert ring.decrypt(token) == b"z"
        assert ring.key_of(token) == key_id(key)
    assert ring.key_of(Fernet(K3).encrypt(b"z")) is None
    assert ring.key_of(b"garbage") is None


def test_a_changed_key_file_is_re_read_on_the_next_use(tmp_path: Path) -> None:
    path = _file(tmp_path, K1)
    ring = KeyRing.from_file(path)
    assert ring.ids == (key_id(K1),)
    write_key_file(path, [K1, K2])
    assert ring.ids == (key_id(K1), key_id(K2))  # no decrypt failure needed
    write_key_file(path, [K2, K1])
    assert ring.primary == key_id(K2)
    write_key_file(path, [K2])
    assert ring.decrypt(Fernet(K2).encrypt(b"a")) == b"a"
    assert ring.ids == (key_id(K2),)


def test_a_token_no_key_opens_re_reads_the_file_even_if_it_looks_unchanged(
    tmp_path: Path,
) -> None:
    path = _file(tmp_path, K1)
    ring = KeyRing.from_file(path)
    write_key_file(path, [K1, K2])
    ring._stamp = stamp(path)  # as if the change went unseen (coarse file-system timestamps)
    assert ring.decrypt(Fernet(K2).encrypt(b"b")) == b"b"
    assert ring.ids == (key_id(K1), key_id(K2))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "holds no keys"),
        (b"# only a comment\n\n", "holds no keys"),
        (b"not-a-key\n", "line 1 is not a Fernet key"),
        (b"\xff\xfe\n", "line 1 is not ASCII text"),
    ],
)
def test_a_bad_key_file_at_start_is_a_config_error_naming_file_and_line(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / KEY_FILE_NAME
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as info:
        Vault.from_settings(Settings(home=tmp_path))
    assert str(path) in info.value.message


def test_a_key_file_that_cannot_be_read_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE_NAME).mkdir()
    with pytest.raises(ConfigError, match=r"cannot read the key file .*: Is a directory"):
        Vault.from_settings(Settings(home=tmp_path))


def test_the_second_line_of_a_key_file_never_shows_in_errors(tmp_path: Path) -> None:
    bad = K2[:-3] + "!!="
    path = _file(tmp_path, K1, bad)
    with pytest.raises(ConfigError, match="line 2 is not a Fernet key") as info:
        read_key_file(path)
    assert K1 not in info.value.message and bad not in info.value.message


def test_a_key_file_broken_while_running_keeps_the_keys_and_reports_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _file(tmp_path, K1, K2)
    ring = KeyRing.from_file(path)
    token = Fernet(K2).encrypt(b"c")
    path.write_text(f"{K1}\nnot-a-key\n")
    with caplog.at_level(logging.ERROR, logger="calflow.vault"):
        assert ring.ids == (key_id(K1), key_id(K2))
        assert ring.decrypt(token) == b"c"
    assert ring.problem is not None and "line 2 is not a Fernet key" in ring.problem
    assert "keeping the 2 keys loaded before" in caplog.text
    assert K1 not in caplog.text and K2 not in caplog.text
    path.unlink()
    assert ring.ids == (key_id(K1), key_id(K2))
    assert ring.problem is not None and "cannot read the key file" in ring.problem
    write_key_file(path, [K2])
    assert ring.ids == (key_id(K2),) and ring.problem is None


def test_vaults_of_one_process_share_the_ring_of_their_key_source(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    first, second = Vault.from_settings(settings), Vault.from_settings(settings)
    assert first.ring is second.ring is shared_ring(settings)
    env = Settings(home=tmp_path, secret_keys=f"{K1},{K2}")
    assert Vault.from_settings(env).ring is Vault.from_settings(env).ring
    assert Vault.from_settings(env).ring is not first.ring
    assert K1 not in repr(Vault.from_settings(env).ring)
    assert key_id(K1) in repr(Vault.from_settings(env).ring)
