"""``calflow keys rotate``: a new encryption key, every secret re-encrypted under it."""

from __future__ import annotations

import typer

from calflow.cli.output import print_json
from calflow.db import open_engine
from calflow.settings import get_settings
from calflow.vault import rotate_keys

keys_app = typer.Typer(help="Encryption keys of the credential vault.", no_args_is_help=True)


@keys_app.command("rotate")
def rotate(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Generate a new first key and re-encrypt every stored secret under it."""
    settings = get_settings()
    result = rotate_keys(open_engine(settings), settings)
    new_keys = result.new_secret_keys.get_secret_value() if result.new_secret_keys else None
    if as_json:
        print_json(
            {
                "reencrypted": result.reencrypted,
                "keys_source": result.keys_source,
                "new_secret_keys": new_keys,
            }
        )
        return
    typer.echo(
        f"re-encrypted {result.reencrypted} integrations under a new key ({result.keys_source})"
    )
    if new_keys:
        typer.echo("Set CALFLOW_SECRET_KEYS to this value for every calflow process:")
        typer.echo(new_keys)
