"""calflow.keys.rotation on SQLite: the two-phase rotation and every refusal.

"Processes" here are real heartbeats (``KeyWatch``) with rings of their own, as another
process would hold them; they beat when a command waits (``KeyContext.sleep``), and the
command's clock is a counter, so nothing depends on the machine's speed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from calflow.db import IntegrationRow, open_engine
from calflow.db.models import ReplayJobRow
from calflow.db.types import utcnow
from calflow.errors import ConfigError
from calflow.integrations import IntegrationStore
from calflow.keys import registry
from calflow.keys.keyfile import KEY_FILE_NAME, read_key_file
from calflow.keys.ring import ENV_SOURCE, KeyRing, key_id
from calflow.keys.rotation import (
    KeyContext,
    KeysNotReady,
    add_key,
    reencrypt,
    retire,
    rotate,
    status,
)
from calflow.keys.watch import KeyWatch
from calflow.replay.jobs import JobStore
from calflow.settings import Settings
from calflow.vault import Vault
from db_fixtures import clean_calflow_env, sqlite_url

__all__ = ["clean_calflow_env", "sqlite_url"]

SECRET = "sk_live_rotation_9c1e"


@dataclass
class Fleet:
    """The running processes of a test: heartbeats on the test's database."""

    engine: Engine
    watches: list[KeyWatch] = field(default_factory=list)

    def start(self, name: str, ring: KeyRing) -> KeyWatch:
        watch = KeyWatch(self.engine, ring, role="worker", name=name, beat_s=60.0)
        watch.start()
        self.watches.append(watch)
        return watch

    def stop(self, watch: KeyWatch) -> None:
        watch.stop()
        self.watches.remove(watch)

    def beat(self) -> None:
        for watch in self.watches:
            watch.beat_now()


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    """A home whose key file holds one key, with an integration and a replay secret."""
    settings = Settings(home=tmp_path)
    store = IntegrationStore.default(settings)
    store.add("cal_com", "main", {}, {"api_key": SECRET})
    JobStore(store.engine, store.vault).create(
        integration_id="int_x", provider="cal_com", target="http://127.0.0.1:9/hook",
        options={}, secret="whsec_replay",
    )  # fmt: skip
    return settings


@pytest.fixture
def fleet(settings: Settings) -> Iterator[Fleet]:
    found = Fleet(open_engine(settings))
    yield found
    for watch in list(found.watches):
        found.stop(watch)


def command(settings: Settings, fleet: Fleet, *, beats: bool = True) -> KeyContext:
    """A ``calflow keys`` command's context whose waits make the fleet beat."""
    ctx = KeyContext.open(settings)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds
        if beats:
            fleet.beat()

    ctx.sleep, ctx.clock = sleep, lambda: now[0]
    return ctx


def tokens(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        found = list(conn.execute(select(IntegrationRow.secrets)).scalars())
        found += list(conn.execute(select(ReplayJobRow.secret)).scalars())
    return [str(t) for t in found]


def under(engine: Engine, key: str) -> bool:
    """Every stored token opens with ``key`` alone."""
    only = Vault([key])
    return all(only.decrypt_json(t) for t in tokens(engine))


def key_file(settings: Settings) -> list[str]:
    return read_key_file(settings.home / KEY_FILE_NAME)


# --- the key file: both phases while processes run -------------------------------------------


def test_rotate_with_no_staged_key_is_refused_while_a_process_runs(
    settings: Settings, fleet: Fleet
) -> None:
    fleet.start("w1", KeyRing.from_file(settings.home / KEY_FILE_NAME))
    before, keys_before = tokens(fleet.engine), key_file(settings)

    with pytest.raises(KeysNotReady) as info:
        rotate(command(settings, fleet))

    message = info.value.message
    assert "1 calflow process is running (worker w1 (host" in message
    assert "`calflow keys add`" in message and "`calflow keys rotate`" in message
    assert "docs/deploy.md" in message and "Nothing was changed" in message
    assert tokens(fleet.engine) == before
    assert key_file(settings) == keys_before
    assert registry.states(fleet.engine) == {}


def test_key_file_add_rotate_retire_while_two_processes_run(
    settings: Settings, fleet: Fleet
) -> None:
    path = settings.home / KEY_FILE_NAME
    (old,) = key_file(settings)
    w1 = fleet.start("w1", KeyRing.from_file(path))
    w2 = fleet.start("w2", KeyRing.from_file(path))

    added = add_key(command(settings, fleet))

    new = key_file(settings)[1]
    assert key_file(settings) == [old, new] and added.key_id == key_id(new)
    assert added.new_secret_keys is None
    assert registry.states(fleet.engine) == {key_id(old): "primary", key_id(new): "staged"}
    fleet.beat()  # each process re-reads the changed file at its heartbeat
    assert all(w.ring.ids == (key_id(old), key_id(new)) for w in (w1, w2))
    assert all(w.ring.primary == key_id(old) for w in (w1, w2))

    rotated = rotate(command(settings, fleet))

    assert (rotated.key_id, rotated.previous) == (key_id(new), key_id(old))
    assert dict(rotated.reencrypted) == {"integrations": 1, "replay_jobs": 1}
    assert rotated.lagging == ()
    assert key_file(settings) == [new, old]
    assert under(fleet.engine, new)
    assert all(w.ring.primary == key_id(new) for w in (w1, w2))
    stored = Vault(ring=w1.ring).decrypt_json(tokens(fleet.engine)[0])
    assert {k: v for k, v in stored.items() if k != "_bound_to"} == {"api_key": SECRET}

    retired = retire(command(settings, fleet))

    assert retired.retired == (key_id(old),)
    assert key_file(settings) == [new]
    fleet.beat()
    assert all(w.ring.ids == (key_id(new),) for w in (w1, w2))
    assert registry.states(fleet.engine)[key_id(old)] == "retired"
    assert IntegrationStore.default(settings).get("main").value("api_key") == SECRET
    assert JobStore(fleet.engine, Vault(ring=w2.ring)).list()[0].id
    assert retire(command(settings, fleet)).retired == ()


def test_a_process_that_cannot_read_the_key_file_blocks_the_rotation_and_says_why(
    settings: Settings, fleet: Fleet, tmp_path: Path
) -> None:
    other = tmp_path / "other-machine" / KEY_FILE_NAME
    other.parent.mkdir()
    other.write_text((settings.home / KEY_FILE_NAME).read_text())
    elsewhere = fleet.start("far", KeyRing.from_file(other))
    add_key(command(settings, fleet))
    other.write_text("garbage\n")  # a botched copy to the other machine
    elsewhere.beat_now()

    with pytest.raises(KeysNotReady) as info:
        rotate(command(settings, fleet), wait_s=2.0)

    message = info.value.message
    assert "1 running process does not hold the staged key" in message
    assert "worker far (host" in message and str(other) in message
    assert "copy the key file there" in message
    assert "it reports: the key file" in message and "line 1 is not a Fernet key" in message
    assert sorted(registry.states(fleet.engine).values()) == ["primary", "staged"]
    assert elsewhere.ring.ids == (key_id(key_file(settings)[0]),)  # kept its keys


def test_rotate_waits_for_the_staged_key_then_gives_up_changing_nothing(
    settings: Settings, fleet: Fleet
) -> None:
    (old,) = key_file(settings)
    fleet.start("w-env", KeyRing([old], source=ENV_SOURCE))
    add_key(command(settings, fleet))
    before = tokens(fleet.engine)
    ctx = command(settings, fleet)

    with pytest.raises(KeysNotReady, match="restart it with CALFLOW_SECRET_KEYS"):
        rotate(ctx, wait_s=5.0)

    assert ctx.clock() >= 5.0  # it did wait
    assert tokens(fleet.engine) == before
    assert key_file(settings)[0] == old
    assert registry.recorded_primary(fleet.engine) == key_id(old)


# --- environment keys: rolling restarts --------------------------------------------------------


def test_env_keys_rolling_restart_then_rotate_then_retire(tmp_path: Path, sqlite_url: str) -> None:
    k1 = Vault.generate_key()
    base = Settings(home=tmp_path, secret_keys=k1)
    IntegrationStore.default(base).add("twilio", "sms", {}, {"auth_token": SECRET})
    fleet = Fleet(open_engine(base))
    try:
        w1 = fleet.start("w1", KeyRing([k1], source=ENV_SOURCE))
        w2 = fleet.start("w2", KeyRing([k1], source=ENV_SOURCE))

        added = add_key(command(base, fleet))

        assert added.keys_source == ENV_SOURCE and added.new_secret_keys is not None
        both = added.new_secret_keys.get_secret_value()
        k2 = both.split(",")[1]
        assert both == f"{k1},{k2}" and k2 not in repr(added)
        assert not (tmp_path / KEY_FILE_NAME).exists()
        with_both = Settings(home=tmp_path, secret_keys=both)
        with pytest.raises(KeysNotReady) as info:
            rotate(command(with_both, fleet))
        assert "2 running processes do not hold the staged key" in info.value.message
        assert info.value.message.count("restart it with CALFLOW_SECRET_KEYS") == 2
        assert under(fleet.engine, k1)

        fleet.stop(w1)  # the rolling restart, one process at a time
        w1 = fleet.start("w1", KeyRing([k1, k2], source=ENV_SOURCE))
        with pytest.raises(KeysNotReady) as info:
            rotate(command(with_both, fleet))
        assert "worker w2" in info.value.message and "worker w1" not in info.value.message
        fleet.stop(w2)
        w2 = fleet.start("w2", KeyRing([k2, k1], source=ENV_SOURCE))  # new key first
        assert w2.ring.primary == key_id(k1)  # follows the recorded primary, not its order

        rotated = rotate(command(with_both, fleet))

        assert rotated.key_id == key_id(k2) and rotated.total == 1
        assert rotated.new_secret_keys is not None
        assert rotated.new_secret_keys.get_secret_value() == f"{k2},{k1}"
        assert under(fleet.engine, k2)
        assert w1.ring.primary == w2.ring.primary == key_id(k2)  # followed at their heartbeat

        retired = retire(command(with_both, fleet))

        assert retired.retired == (key_id(k1),)
        assert retired.new_secret_keys is not None
        assert retired.new_secret_keys.get_secret_value() == k2
        assert len(retired.still_loaded_by) == 2  # until their next restart
        fleet.stop(w1)
        fleet.start("w1", KeyRing([k2], source=ENV_SOURCE))  # restarted with the new key alone
        with pytest.raises(ConfigError, match=f"do not include key {key_id(k2)}"):
            KeyWatch(fleet.engine, KeyRing([k1], source=ENV_SOURCE), role="worker",
                     name="stale", beat_s=60).start()  # fmt: skip
        alone = Settings(home=tmp_path, secret_keys=k2)
        assert IntegrationStore.default(alone).get("sms").value("auth_token") == SECRET
    finally:
        for watch in list(fleet.watches):
            fleet.stop(watch)


def test_rotate_names_a_process_that_did_not_follow_and_retire_waits_for_it(
    settings: Settings, fleet: Fleet
) -> None:
    (old,) = key_file(settings)
    path = settings.home / KEY_FILE_NAME
    add_key(command(settings, fleet))
    new = key_file(settings)[1]
    slow = fleet.start("slow", KeyRing([old, new], source=ENV_SOURCE))
    ctx = command(settings, fleet, beats=False)  # it never beats while rotate waits

    rotated = rotate(ctx)

    assert len(rotated.lagging) == 1 and rotated.lagging[0].startswith("worker slow (host")
    assert slow.ring.primary == key_id(old)  # it has not beaten since
    assert ctx.clock() >= 3 * 60.0  # waited about three of its heartbeats
    with pytest.raises(KeysNotReady, match=f"worker slow .* still encrypts with key {key_id(old)}"):
        retire(command(settings, fleet, beats=False))
    assert key_file(settings) == [new, old]
    slow.beat_now()
    assert retire(command(settings, fleet)).retired == (key_id(old),)
    assert read_key_file(path) == [new]


def test_retire_refuses_while_secrets_use_the_key_naming_how_many(
    settings: Settings, fleet: Fleet
) -> None:
    (old,) = key_file(settings)
    add_key(command(settings, fleet))
    new = key_file(settings)[1]
    rotate(command(settings, fleet))
    # a process that wrote before it followed the rotation: its secrets are under the old key
    lagging = Vault([old, new])
    IntegrationStore(fleet.engine, lagging).add("http", "late", {}, {"bearer": "b"})
    IntegrationStore(fleet.engine, lagging).update("main", secrets={"api_key": SECRET})

    with pytest.raises(KeysNotReady) as info:
        retire(command(settings, fleet))

    assert f"key {key_id(old)} still encrypts 2 secrets (integrations: 2)" in info.value.message
    assert "`calflow keys reencrypt`" in info.value.message
    assert key_file(settings) == [new, old]
    assert registry.states(fleet.engine)[key_id(old)] == "old"

    done = reencrypt(command(settings, fleet))

    assert done.key_id == key_id(new) and done.total == 2
    assert under(fleet.engine, new)
    assert retire(command(settings, fleet)).retired == (key_id(old),)


def test_retire_checks_its_arguments(settings: Settings, fleet: Fleet) -> None:
    (old,) = key_file(settings)
    ctx = command(settings, fleet)
    assert retire(ctx).retired == ()  # only the primary: nothing to retire
    with pytest.raises(ConfigError, match=f"key {key_id(old)} is the primary key"):
        retire(ctx, [key_id(old)])
    with pytest.raises(ConfigError, match="no key 000000000000: this command holds"):
        retire(ctx, ["000000000000"])
    staged = add_key(ctx).key_id
    with pytest.raises(ConfigError, match=f"key {staged} is staged already"):
        add_key(ctx)
    assert retire(ctx, [staged]).retired == (staged,)  # cancels the staged key
    assert key_file(settings) == [old]
    assert add_key(ctx).key_id != staged


def test_commands_with_keys_that_open_no_stored_secret_change_nothing(
    settings: Settings, fleet: Fleet
) -> None:
    stray = Settings(home=settings.home, secret_keys=Vault.generate_key())
    for action in (add_key, rotate, reencrypt):
        with pytest.raises(ConfigError, match="2 stored secrets open with none of this command"):
            action(command(stray, fleet))
    assert registry.states(fleet.engine) == {}
    assert status(command(stray, fleet))["unreadable_secrets"] == {
        "integrations": 1, "replay_jobs": 1}  # fmt: skip


def test_a_command_without_the_primary_key_retires_nothing(
    settings: Settings, fleet: Fleet, tmp_path: Path
) -> None:
    (old,) = key_file(settings)
    add_key(command(settings, fleet))
    rotate(command(settings, fleet))
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / KEY_FILE_NAME).write_text(f"{old}\n")  # a copy from before the rotation
    with pytest.raises(ConfigError, match="is not among this command's keys"):
        retire(command(Settings(home=stale, database_url=f"sqlite:///{tmp_path}/calflow.db"),
                       fleet))  # fmt: skip
    assert read_key_file(stale / KEY_FILE_NAME) == [old]


def test_keys_commands_never_create_a_key_file(tmp_path: Path, sqlite_url: str) -> None:
    with pytest.raises(ConfigError, match=r"no key file at .* CALFLOW_SECRET_KEYS is not set"):
        KeyContext.open(Settings(home=tmp_path))
    assert not (tmp_path / KEY_FILE_NAME).exists()


# --- the heartbeat ---------------------------------------------------------------------------


def test_a_process_row_counts_until_three_beats_after_the_last_and_goes_at_stop(
    settings: Settings, fleet: Fleet
) -> None:
    watch = fleet.start("w1", KeyRing.from_file(settings.home / KEY_FILE_NAME))
    (row,) = registry.live(fleet.engine)
    assert (row.name, row.role, row.beat_s) == ("w1", "worker", 60.0)
    assert row.key_ids == watch.ring.ids and row.encrypts_with == watch.ring.primary
    assert registry.live(fleet.engine, row.seen_at + timedelta(seconds=179)) == [row]
    assert registry.live(fleet.engine, row.seen_at + timedelta(seconds=181)) == []
    fleet.stop(watch)
    assert registry.live(fleet.engine, utcnow()) == []


def test_status_shows_keys_states_uses_and_processes(settings: Settings, fleet: Fleet) -> None:
    (old,) = key_file(settings)
    fleet.start("w1", KeyRing.from_file(settings.home / KEY_FILE_NAME))
    add_key(command(settings, fleet))
    fleet.beat()

    shown = status(command(settings, fleet))

    assert shown["encrypts_with"] == key_id(old)
    by_key = {k["key"]: k for k in shown["keys"]}
    assert by_key[key_id(old)]["state"] == "primary"
    assert by_key[key_id(old)]["secrets"] == {"integrations": 1, "replay_jobs": 1}
    staged = next(k for k in shown["keys"] if k["state"] == "staged")
    assert (staged["held_by"], staged["encrypting"], staged["secrets"]) == (1, 0, {})
    assert [p["name"] for p in shown["processes"]] == ["w1"]
    assert old not in str(shown)
