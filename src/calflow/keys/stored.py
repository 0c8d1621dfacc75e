"""The encrypted columns of calflow's tables, counted by key and re-encrypted.

Secrets are stored as Fernet tokens in ``integrations.secrets`` (every integration) and
``replay_jobs.secret`` (a replay's signing secret). A token does not name its key, so
the key of a token is the key that opens it: a few HMAC checks per row.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select, update

from calflow.db.engine import write_transaction
from calflow.db.models import IntegrationRow, ReplayJobRow
from calflow.errors import ConfigError
from calflow.keys.ring import KeyRing

__all__ = ["ENCRYPTED", "Usage", "reencrypt", "usage"]

ENCRYPTED: tuple[tuple[str, Any, Any], ...] = (
    ("integrations", IntegrationRow.id, IntegrationRow.secrets),
    ("replay_jobs", ReplayJobRow.id, ReplayJobRow.secret),
)
"""Each encrypted column: table name, id column, token column."""


@dataclass
class Usage:
    """How many stored tokens each key opens, per table, and how many none opens."""

    by_key: dict[str, Counter[str]] = field(default_factory=dict)
    unreadable: Counter[str] = field(default_factory=Counter)

    def count(self, key: str) -> int:
        """Tokens under the key ``key``."""
        return sum(self.by_key.get(key, Counter()).values())

    def describe(self, key: str) -> str:
        """``3 secrets (integrations: 2, replay_jobs: 1)``."""
        counts = self.by_key.get(key, Counter())
        parts = ", ".join(f"{table}: {n}" for table, n in sorted(counts.items()) if n)
        total = sum(counts.values())
        return f"{total} secret{'s' if total != 1 else ''}" + (f" ({parts})" if parts else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "by_key": {k: dict(v) for k, v in sorted(self.by_key.items())},
            "unreadable": dict(self.unreadable),
        }


def usage(engine: Engine, ring: KeyRing) -> Usage:
    """Count the stored tokens by the key of ``ring`` that opens them."""
    found = Usage()
    with engine.connect() as conn:
        for table, _, column in ENCRYPTED:
            for token in conn.execute(select(column).where(column.is_not(None))).scalars():
                key = ring.key_of(_bytes(token))
                if key is None:
                    found.unreadable[table] += 1
                else:
                    found.by_key.setdefault(key, Counter())[table] += 1
    return found


def reencrypt(engine: Engine, ring: KeyRing, target: str) -> Counter[str]:
    """Re-encrypt every stored token that is not under the key ``target`` under it, in one
    transaction (rows locked); the rewritten rows counted per table.

    Raises ``ConfigError`` naming the first row no key of ``ring`` opens; then nothing
    was changed (the keys of the ring still open every row they opened before).
    """
    fernet = ring.fernet(target)
    done: Counter[str] = Counter()
    with write_transaction(engine) as conn:
        for table, id_column, column in ENCRYPTED:
            rows = conn.execute(
                select(id_column, column).where(column.is_not(None)).with_for_update()
            ).all()
            for row_id, token in rows:
                raw = _bytes(token)
                key = ring.key_of(raw)
                if key is None:
                    raise ConfigError(
                        f"{table} row {row_id}: no key of this command ({ring.source}) opens "
                        "its secret; nothing was re-encrypted"
                    )
                if key == target:
                    continue
                plain = ring.fernet(key).decrypt(raw)
                conn.execute(
                    update(id_column.class_)
                    .where(id_column == row_id)
                    .values({column.key: fernet.encrypt(plain).decode("ascii")})
                )
                done[table] += 1
    return done


def _bytes(token: Any) -> bytes:
    try:
        return str(token).encode("ascii")
    except UnicodeEncodeError:
        return b""  # no key opens it: counted as unreadable
