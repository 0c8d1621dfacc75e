"""``calflow keys``: add, rotate, re-encrypt and retire encryption keys while processes run.

The procedure (``docs/deploy.md``, "Rotating the encryption key"):

1. :func:`add_key` stages a new key: every process must hold it before it encrypts
   anything. With a key file it is written into the file (running processes on this
   machine re-read it within a heartbeat); with ``CALFLOW_SECRET_KEYS`` the new list is
   returned, for a rolling restart.
2. :func:`rotate` makes the staged key primary once every running process reports it:
   recorded in the database (every process follows it at its next heartbeat), put first
   in the key file, and every stored secret re-encrypted under it. Refused while a
   running process lacks it; nothing is changed then.
3. :func:`retire` drops keys once no stored secret uses them and no running process
   encrypts with them.

Refusals that clear by waiting or by restarting processes raise :class:`KeysNotReady`
(CLI exit 3); a mistake in the command itself (an unknown key, keys that open none of
the stored secrets) raises ``ConfigError`` (exit 2).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Engine

from calflow.db.engine import open_engine
from calflow.errors import CalflowError, ConfigError
from calflow.keys import registry, stored
from calflow.keys.keyfile import key_file_path, locked, read_key_file, write_key_file
from calflow.keys.registry import OLD, PRIMARY, RETIRED, STAGED, ProcessKeys
from calflow.keys.ring import ENV_SOURCE, KeyRing, key_id
from calflow.settings import Settings
from calflow.vault import ENV_VAR, Vault, shared_ring, split_keys

__all__ = [
    "AddResult",
    "KeyContext",
    "KeysNotReady",
    "ReencryptResult",
    "RetireResult",
    "RotateResult",
    "add_key",
    "reencrypt",
    "retire",
    "rotate",
    "status",
]

_DOC = 'docs/deploy.md, "Rotating the encryption key"'
_POLL_S = 0.2


class KeysNotReady(CalflowError):
    """Changing the keys now would leave a running process unable to decrypt, or lose
    secrets: wait, or restart the processes named, then run the command again."""

    code = "KEYS_NOT_READY"


@dataclass
class KeyContext:
    """What a ``calflow keys`` command works on: the database and this command's keys.

    ``sleep`` and ``clock`` (monotonic seconds) pace the waits for running processes.
    """

    engine: Engine
    ring: KeyRing
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def open(cls, settings: Settings) -> KeyContext:
        """The configured database and keys; a missing key file is an error here (a
        ``keys`` command never creates one: it would hold a key nobody else has)."""
        if not split_keys(settings.secret_key_text()) and not key_file_path(settings).exists():
            raise ConfigError(
                f"no key file at {key_file_path(settings)} and {ENV_VAR} is not set: run "
                f"`calflow keys` with the CALFLOW_HOME (or {ENV_VAR}) of the calflow processes"
            )
        ring = shared_ring(settings, create=False)
        engine = open_engine(settings)
        registry.follow(engine, ring)
        return cls(engine, ring)

    @property
    def from_env(self) -> bool:
        return self.ring.source == ENV_SOURCE


def _env_list(keys: Sequence[str]) -> SecretStr:
    return SecretStr(",".join(keys))


@dataclass(frozen=True)
class AddResult:
    """A staged key: its id, and with env keys the list every process must get."""

    key_id: str
    keys_source: str
    new_secret_keys: SecretStr | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key_id, "state": STAGED, "keys_source": self.keys_source,
                "new_secret_keys": _reveal(self.new_secret_keys)}  # fmt: skip


@dataclass(frozen=True)
class RotateResult:
    """The key now primary, the one before, what was re-encrypted, who lagged."""

    key_id: str
    previous: str | None
    reencrypted: Counter[str]
    keys_source: str
    new_secret_keys: SecretStr | None = None
    lagging: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return sum(self.reencrypted.values())

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key_id, "previous": self.previous, "reencrypted": self.total,
                "reencrypted_by_table": dict(self.reencrypted), "keys_source": self.keys_source,
                "new_secret_keys": _reveal(self.new_secret_keys),
                "lagging": list(self.lagging)}  # fmt: skip


@dataclass(frozen=True)
class ReencryptResult:
    """Rows re-encrypted under the primary key."""

    key_id: str
    reencrypted: Counter[str]

    @property
    def total(self) -> int:
        return sum(self.reencrypted.values())

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key_id, "reencrypted": self.total,
                "reencrypted_by_table": dict(self.reencrypted)}  # fmt: skip


@dataclass(frozen=True)
class RetireResult:
    """Keys retired; with env keys the list processes get at their next restart."""

    retired: tuple[str, ...]
    keys_source: str
    new_secret_keys: SecretStr | None = None
    still_loaded_by: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"retired": list(self.retired), "keys_source": self.keys_source,
                "new_secret_keys": _reveal(self.new_secret_keys),
                "still_loaded_by": list(self.still_loaded_by)}  # fmt: skip


def _reveal(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


# --- add -----------------------------------------------------------------------------------


def add_key(ctx: KeyContext) -> AddResult:
    """Stage a new key: decrypt-only until :func:`rotate` (see the module docstring)."""
    states = registry.states(ctx.engine)
    staged = [k for k, s in states.items() if s == STAGED]
    if staged:
        raise ConfigError(
            f"key {staged[0]} is staged already: rotate to it with `calflow keys rotate`, or "
            f"cancel it with `calflow keys retire {staged[0]}`"
        )
    _check_opens_stored(ctx)
    changes: dict[str, str] = {}
    if registry.recorded_primary(ctx.engine) is None:
        # record the key in use, so that a process restarted with the new key first in
        # its list still encrypts with the old one until the rotation
        current = ctx.ring.primary
        lacking = _lacking(registry.live(ctx.engine), current)
        if lacking:
            raise ConfigError(
                f"this command encrypts with key {current} (from {ctx.ring.source}), which "
                f"{', '.join(p.label for p in lacking)} does not hold: run it with the keys "
                "the calflow processes use (the same CALFLOW_HOME, or CALFLOW_SECRET_KEYS)"
            )
        changes[current] = PRIMARY
    new = Vault.generate_key()
    new_id = key_id(new)
    changes[new_id] = STAGED
    env_list = None
    if ctx.from_env:
        env_list = _env_list([*ctx.ring.keys, new])
    else:
        path = _key_file(ctx)
        with locked(path):
            write_key_file(path, [*read_key_file(path), new])
        ctx.ring.refresh()
    registry.set_states(ctx.engine, changes)
    return AddResult(new_id, ctx.ring.source, env_list)


# --- rotate --------------------------------------------------------------------------------


def rotate(ctx: KeyContext, wait_s: float = 0.0) -> RotateResult:
    """Make the staged key primary and re-encrypt every stored secret under it.

    With no staged key and no running process, a new key is generated and made primary
    at once. Raises :class:`KeysNotReady` when processes run and no key is staged, or
    when a running process still lacks the staged key after ``wait_s`` seconds.
    """
    _check_opens_stored(ctx)
    staged = [k for k, s in registry.states(ctx.engine).items() if s == STAGED]
    if not staged:
        return _rotate_to_new_key(ctx)
    target = staged[0]
    if target not in ctx.ring.ids:
        raise ConfigError(_not_held_here(ctx, target))
    missing = _wait(ctx, lambda: _lacking(registry.live(ctx.engine), target), wait_s)
    if missing:
        raise KeysNotReady(_lacking_message(target, missing))
    previous = registry.recorded_primary(ctx.engine) or next(
        (k for k in ctx.ring.ids if k != target), target
    )
    registry.set_states(ctx.engine, {previous: OLD, target: PRIMARY})
    # a process that registered while the state changed started under the old primary
    late = _lacking(registry.live(ctx.engine), target)
    if late:
        registry.set_states(ctx.engine, {target: STAGED, previous: PRIMARY})
        raise KeysNotReady(_lacking_message(target, late))
    ctx.ring.prefer(target)
    if not ctx.from_env:
        _reorder_key_file(ctx, target)
    lagging = _wait_until_encrypting(ctx, target)
    done = stored.reencrypt(ctx.engine, ctx.ring, target)
    env_list = _env_list(_ordered(ctx.ring, target)) if ctx.from_env else None
    return RotateResult(target, previous, done, ctx.ring.source, env_list,
                        tuple(p.label for p in lagging))  # fmt: skip


def _rotate_to_new_key(ctx: KeyContext) -> RotateResult:
    running = registry.live(ctx.engine)
    if running:
        raise KeysNotReady(_running_message(running))
    previous = ctx.ring.primary
    new = Vault.generate_key()
    new_id = key_id(new)
    if ctx.from_env:
        ring = KeyRing([new, *_ordered(ctx.ring, previous)], source=ENV_SOURCE)
    else:
        path = _key_file(ctx)
        with locked(path):
            write_key_file(path, [new, *read_key_file(path)])
        ctx.ring.refresh()
        ring = ctx.ring
    registry.set_states(ctx.engine, {previous: OLD, new_id: PRIMARY})
    ctx.ring.prefer(new_id)
    try:
        done = stored.reencrypt(ctx.engine, ring, new_id)
    except ConfigError:
        registry.set_states(ctx.engine, {new_id: STAGED, previous: PRIMARY})
        raise
    env_list = _env_list(ring.keys) if ctx.from_env else None
    return RotateResult(new_id, previous, done, ctx.ring.source, env_list)


# --- reencrypt -----------------------------------------------------------------------------


def reencrypt(ctx: KeyContext) -> ReencryptResult:
    """Re-encrypt every stored secret not under the primary key under it (those written
    by a process that had not yet followed a rotation). Refused while a running process
    lacks the primary key."""
    primary = registry.recorded_primary(ctx.engine) or ctx.ring.primary
    if primary not in ctx.ring.ids:
        raise ConfigError(_not_held_here(ctx, primary))
    _check_opens_stored(ctx)
    missing = _lacking(registry.live(ctx.engine), primary)
    if missing:
        raise KeysNotReady(_lacking_message(primary, missing))
    return ReencryptResult(primary, stored.reencrypt(ctx.engine, ctx.ring, primary))


# --- retire --------------------------------------------------------------------------------


def retire(ctx: KeyContext, keys: Sequence[str] = ()) -> RetireResult:
    """Drop keys no stored secret uses and no running process encrypts with.

    ``keys``: ids to retire; default: every key of this command but the primary and a
    staged one. Raises ``ConfigError`` for an unknown id or the primary key, and
    :class:`KeysNotReady` naming how many secrets still use a key, or which processes
    still encrypt with one.
    """
    states = registry.states(ctx.engine)
    primary = registry.recorded_primary(ctx.engine) or ctx.ring.primary
    held = ctx.ring.ids
    if primary not in held:  # a stale key file: retiring its keys could leave it empty
        raise ConfigError(_not_held_here(ctx, primary))
    if keys:
        candidates = list(dict.fromkeys(keys))
        for key in candidates:
            if key == primary:
                raise ConfigError(
                    f"key {key} is the primary key (it encrypts every secret); rotate to a new "
                    "key first: `calflow keys add`, then `calflow keys rotate`"
                )
            if key not in held and key not in states:
                raise ConfigError(
                    f"no key {key}: this command holds {', '.join(held)} (from "
                    f"{ctx.ring.source}); `calflow keys status` lists every key"
                )
    else:
        candidates = [k for k in held if k != primary and states.get(k) != STAGED]
    if not candidates:
        return RetireResult((), ctx.ring.source)
    encrypting = [p for p in registry.live(ctx.engine) if p.encrypts_with in candidates]
    if encrypting:
        raise KeysNotReady(_encrypting_message(encrypting))
    use = stored.usage(ctx.engine, ctx.ring)
    blocked = [key for key in candidates if use.count(key)]
    if blocked:
        raise KeysNotReady(
            "; ".join(f"key {k} still encrypts {use.describe(k)}" for k in blocked)
            + ": re-encrypt them under the primary key with `calflow keys reencrypt`, then "
            "retire again. Nothing was changed."
        )
    unseen = [k for k in candidates if k not in held]
    if unseen and sum(use.unreadable.values()):
        raise ConfigError(
            f"{sum(use.unreadable.values())} stored secrets open with none of this "
            f"command's keys, so it cannot tell whether key {unseen[0]} still encrypts "
            "some: run it with every key the processes hold"
        )
    registry.set_states(ctx.engine, dict.fromkeys(candidates, RETIRED))
    env_list = None
    if ctx.from_env:
        env_list = _env_list([k for k in _ordered(ctx.ring, primary)
                              if key_id(k) not in candidates])  # fmt: skip
    else:
        path = _key_file(ctx)
        with locked(path):
            kept = [k for k in read_key_file(path) if key_id(k) not in candidates]
            write_key_file(path, kept)
        ctx.ring.refresh()
    loaded = [p.label for p in registry.live(ctx.engine) if set(p.key_ids) & set(candidates)]
    return RetireResult(tuple(candidates), ctx.ring.source, env_list, tuple(loaded))


# --- status --------------------------------------------------------------------------------


def status(ctx: KeyContext) -> dict[str, Any]:
    """This command's keys, each key's state and use, and every running process's keys."""
    states = registry.states(ctx.engine)
    running = registry.live(ctx.engine)
    use = stored.usage(ctx.engine, ctx.ring)
    ids = list(dict.fromkeys([*ctx.ring.ids, *states]))
    keys = []
    for key in ids:
        keys.append({
            "key": key,
            "state": states.get(key, "unrecorded"),
            "held_here": key in ctx.ring.ids,
            "secrets": dict(use.by_key.get(key, Counter())) if key in ctx.ring.ids else None,
            "held_by": sum(key in p.key_ids for p in running),
            "encrypting": sum(p.encrypts_with == key for p in running),
        })  # fmt: skip
    return {
        "keys_source": ctx.ring.source,
        "encrypts_with": ctx.ring.primary,
        "keys": keys,
        "unreadable_secrets": dict(use.unreadable),
        "processes": [p.to_dict() for p in running],
    }


# --- helpers -------------------------------------------------------------------------------


def _check_opens_stored(ctx: KeyContext) -> None:
    unreadable = sum(stored.usage(ctx.engine, ctx.ring).unreadable.values())
    if unreadable:
        raise ConfigError(
            f"{unreadable} stored secret{'s open' if unreadable != 1 else ' opens'} with none of "
            f"this command's keys (from {ctx.ring.source}): run it with the keys the calflow "
            f"processes use (the same CALFLOW_HOME, or {ENV_VAR}); nothing was changed"
        )


def _key_file(ctx: KeyContext) -> Any:
    path = ctx.ring.key_file
    assert path is not None  # a ring not from the environment comes from a key file
    return path


def _ordered(ring: KeyRing, first: str) -> list[str]:
    """The ring's keys with the key ``first`` (an id) in front."""
    pairs = list(zip(ring.ids, ring.keys, strict=True))
    return [k for i, k in pairs if i == first] + [k for i, k in pairs if i != first]


def _reorder_key_file(ctx: KeyContext, first: str) -> None:
    path = _key_file(ctx)
    with locked(path):
        keys = read_key_file(path)
        ahead = [k for k in keys if key_id(k) == first]
        write_key_file(path, ahead + [k for k in keys if key_id(k) != first])
    ctx.ring.refresh()


def _lacking(running: Sequence[ProcessKeys], key: str) -> list[ProcessKeys]:
    return [p for p in running if key not in p.key_ids]


def _wait(
    ctx: KeyContext, check: Callable[[], list[ProcessKeys]], wait_s: float
) -> list[ProcessKeys]:
    deadline = ctx.clock() + wait_s
    while True:
        found = check()
        if not found or ctx.clock() >= deadline:
            return found
        ctx.sleep(_POLL_S)


def _wait_until_encrypting(ctx: KeyContext, key: str) -> list[ProcessKeys]:
    """Wait (about three heartbeats at most) until every running process encrypts with
    ``key``; the processes that did not, if any."""
    running = registry.live(ctx.engine)
    if not running:
        return []
    bound = max(p.beat_s for p in running) * registry.EXPIRY_BEATS + 1.0
    return _wait(ctx, lambda: [p for p in registry.live(ctx.engine)
                               if p.encrypts_with != key], bound)  # fmt: skip


def _running_message(running: Sequence[ProcessKeys]) -> str:
    names = ", ".join(p.label for p in running)
    count = len(running)
    return (
        f"{count} calflow process{'es are' if count != 1 else ' is'} running ({names}): a new "
        "key made primary at once would leave them unable to decrypt the secrets. Rotate in "
        "two steps: `calflow keys add` (a new key that every process must hold: processes "
        "re-read their key file by themselves; with CALFLOW_SECRET_KEYS restart each "
        "process with the list it prints), then `calflow keys rotate` once `calflow keys "
        f"status` shows every process holds it (or `calflow keys rotate --wait 60`). See "
        f"{_DOC}. Nothing was changed."
    )


def _lacking_message(key: str, missing: Sequence[ProcessKeys]) -> str:
    parts = []
    for p in missing:
        if p.from_env:
            fix = (f"restart it with {ENV_VAR} set to the list `calflow keys add` printed "
                   f"(it holds {', '.join(p.key_ids)})")  # fmt: skip
        else:
            fix = (f"it re-reads its key file {p.keys_source} within {p.beat_s:g} s; on "
                   "another machine, copy the key file there")  # fmt: skip
            if p.problem:
                fix += f" (it reports: {p.problem})"
        parts.append(f"{p.label}: {fix}")
    return (
        f"{len(missing)} running process{'es do' if len(missing) != 1 else ' does'} not hold "
        f"the staged key {key} yet, so rotating now would leave them unable to decrypt: "
        + "; ".join(parts)
        + f". Then run `calflow keys rotate` again (`--wait SECONDS` waits for them). See "
        f"{_DOC}. Nothing was changed."
    )


def _encrypting_message(processes: Sequence[ProcessKeys]) -> str:
    parts = [f"{p.label} still encrypts with key {p.encrypts_with}" for p in processes]
    return (
        "; ".join(parts)
        + ": it has not followed the rotation yet (it does at its next heartbeat, or it "
        "lacks the primary key: restart it with the current keys). Retiring now could "
        "lose what it writes. Nothing was changed."
    )


def _not_held_here(ctx: KeyContext, key: str) -> str:
    where = (f"{ENV_VAR} of this command" if ctx.from_env
             else f"the key file {ctx.ring.source}")  # fmt: skip
    return (
        f"key {key} is not among this command's keys ({where} holds "
        f"{', '.join(ctx.ring.ids)}): run it with the keys `calflow keys add` wrote or "
        "printed"
    )
