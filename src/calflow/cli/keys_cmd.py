"""``calflow keys``: stage, rotate, re-encrypt and retire the vault's encryption keys.

Every command refuses what would leave a running ``calflow serve`` or ``worker`` unable
to decrypt, or lose a secret: exit 3 (``KEYS_NOT_READY``) with what to do, and nothing
changed. See :mod:`calflow.keys.rotation` and ``docs/deploy.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import typer

from calflow.cli.output import console, print_json, show_error, table
from calflow.keys.rotation import (
    KeyContext,
    KeysNotReady,
    add_key,
    reencrypt,
    retire,
    rotate,
    status,
)
from calflow.settings import get_settings
from calflow.vault import ENV_VAR

keys_app = typer.Typer(help="Encryption keys of the credential vault.", no_args_is_help=True)

EXIT_NOT_READY = 3
"""Refused for now: wait for (or restart) the processes named, then run it again."""

T = TypeVar("T")
JSON_OPTION = typer.Option(False, "--json", help="Print JSON.")


def _run(action: Callable[[KeyContext], T]) -> T:
    try:
        return action(KeyContext.open(get_settings()))
    except KeysNotReady as exc:
        show_error(exc)
        raise typer.Exit(EXIT_NOT_READY) from None


def _env_note(new_keys: str | None, sentence: str) -> None:
    """With env keys: what to do with the new list, then the list itself (on stdout)."""
    if new_keys:
        console.print(sentence, highlight=False)
        typer.echo(new_keys)


@keys_app.command("status")
def status_cmd(as_json: bool = JSON_OPTION) -> None:
    """This command's keys, each key's state and use, and the keys of running processes."""
    data: dict[str, Any] = _run(status)
    if as_json:
        print_json(data)
        return
    console.print(f"keys from {data['keys_source']}; encrypting with {data['encrypts_with']}",
                  highlight=False)  # fmt: skip
    table("keys", ["key", "state", "secrets here", "held by", "encrypting"], [
        [k["key"], k["state"],
         "?" if k["secrets"] is None else sum(k["secrets"].values()),
         k["held_by"], k["encrypting"]]
        for k in data["keys"]
    ])  # fmt: skip
    table("running processes", ["process", "host", "pid", "keys from", "keys", "encrypts",
                                "problem"], [
        [f"{p['role']} {p['name']}", p["host"], p["pid"], p["keys_source"],
         " ".join(p["keys"]), p["encrypts_with"], p["problem"]]
        for p in data["processes"]
    ])  # fmt: skip
    unreadable = sum(data["unreadable_secrets"].values())
    if unreadable:
        console.print(f"{unreadable} stored secrets open with none of this command's keys")


@keys_app.command("add")
def add_cmd(as_json: bool = JSON_OPTION) -> None:
    """Stage a new key: every process holds it (decrypt only) before `keys rotate`."""
    result = _run(add_key)
    data = result.to_dict()
    if as_json:
        print_json(data)
        return
    console.print(f"staged key {result.key_id} ({result.keys_source})", highlight=False)
    if data["new_secret_keys"]:
        _env_note(
            data["new_secret_keys"],
            f"Restart every calflow process, one at a time, with {ENV_VAR} set to:",
        )
    else:
        console.print("running processes re-read the key file by themselves; on other "
                      "machines, copy it there")  # fmt: skip
    console.print("then: calflow keys rotate --wait 60")


@keys_app.command("rotate")
def rotate_cmd(
    wait: float = typer.Option(
        0.0,
        "--wait",
        min=0.0,
        max=3600.0,
        help="Seconds to wait for every running process to hold the staged key.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Make the staged key primary and re-encrypt every stored secret under it."""
    result = _run(lambda ctx: rotate(ctx, wait_s=wait))
    data = result.to_dict()
    if as_json:
        print_json(data)
        return
    console.print(f"key {result.key_id} encrypts now; re-encrypted {result.total} secrets "
                  f"({result.keys_source})", highlight=False)  # fmt: skip
    for label in result.lagging:
        console.print(f"{label} had not followed yet; `calflow keys retire` checks it")
    _env_note(
        data["new_secret_keys"],
        f"Processes follow the new key already; {ENV_VAR} "
        "for their next start (the old key stays until `calflow keys retire`):",
    )
    console.print("then: calflow keys retire")


@keys_app.command("reencrypt")
def reencrypt_cmd(as_json: bool = JSON_OPTION) -> None:
    """Re-encrypt under the primary key the secrets still under an older key."""
    result = _run(reencrypt)
    if as_json:
        print_json(result.to_dict())
        return
    console.print(f"re-encrypted {result.total} secrets under key {result.key_id}",
                  highlight=False)  # fmt: skip


@keys_app.command("retire")
def retire_cmd(
    keys: list[str] = typer.Argument(None, help="Key ids (default: every key but the primary)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Drop old keys once no stored secret and no running process uses them."""
    result = _run(lambda ctx: retire(ctx, keys or ()))
    data = result.to_dict()
    if as_json:
        print_json(data)
        return
    if not result.retired:
        console.print("nothing to retire: every key is the primary or staged")
        return
    console.print(f"retired {', '.join(result.retired)} ({result.keys_source})", highlight=False)
    _env_note(
        data["new_secret_keys"],
        f"Restart every calflow process, one at a time, with {ENV_VAR} set to:",
    )
