"""The heartbeat of a ``calflow serve`` or ``worker`` process: its keys, current.

At start (:meth:`KeyWatch.start`) it checks the process's keys: an unreadable or
malformed key file, or keys that lack the key the database records as primary, stop
the process before it touches a run (``ConfigError``, exit 2). Then a thread, every
``CALFLOW_KEYS_HEARTBEAT_S`` seconds (default 10), re-reads the key file if it changed,
follows the recorded primary, and writes the process's row in ``key_processes`` (key
ids, the encrypting key, any key file problem): what ``calflow keys rotate`` and
``retire`` look at before they change anything. A clean stop removes the row.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from types import TracebackType

from sqlalchemy import Engine

from calflow.db.engine import open_engine
from calflow.db.types import utcnow
from calflow.errors import ConfigError
from calflow.keys import registry
from calflow.keys.ring import ENV_SOURCE, KeyRing
from calflow.settings import Settings, get_settings
from calflow.vault import ENV_VAR, shared_ring

__all__ = ["KeyWatch"]

log = logging.getLogger("calflow.keys")


class KeyWatch:
    """Keeps one process's keys current and reported; see the module docstring."""

    def __init__(
        self, engine: Engine, ring: KeyRing, *, role: str, name: str, beat_s: float
    ) -> None:
        self.engine = engine
        self.ring = ring
        self.role = role
        self.name = name
        self.beat_s = beat_s
        self.id = secrets.token_hex(8)
        self._started = utcnow()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._missing_primary: str | None = None

    @classmethod
    def for_process(cls, role: str, name: str, settings: Settings | None = None) -> KeyWatch:
        """The watch of this process's keys (``ConfigError`` if they cannot be loaded)."""
        settings = settings or get_settings()
        ring = shared_ring(settings)
        return cls(open_engine(settings), ring, role=role, name=name,
                   beat_s=settings.keys_heartbeat_s)  # fmt: skip

    def start(self) -> None:
        """Check the keys against the database, report them, and start the heartbeat."""
        primary = registry.recorded_primary(self.engine)
        if primary is not None and primary not in self.ring.ids:
            raise ConfigError(_lacks_primary(self.ring, primary))
        self.ring.prefer(primary)
        self._beat()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="calflow-keys", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the heartbeat and remove this process's row."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            registry.forget(self.engine, self.id)
        except Exception as exc:  # the row expires by itself
            log.warning("could not remove this process from key_processes: %s", exc)

    def beat_now(self) -> None:
        """One heartbeat: re-read a changed key file, follow the primary, report."""
        self.ring.refresh()
        primary = registry.follow(self.engine, self.ring)
        self._missing_primary = primary if primary and primary not in self.ring.ids else None
        self._beat()

    def _run(self) -> None:
        while not self._stop.wait(self.beat_s):
            try:
                self.beat_now()
            except Exception as exc:  # a database hiccup: the next beat tries again
                log.warning("key heartbeat failed (will retry): %s: %s", type(exc).__name__, exc)

    def _beat(self) -> None:
        now = utcnow()
        problems = [p for p in (self.ring.problem, self._missing_note()) if p]
        registry.beat(
            self.engine,
            registry.ProcessKeys(
                id=self.id,
                name=self.name,
                role=self.role,
                host=socket.gethostname(),
                pid=os.getpid(),
                keys_source=self.ring.source,
                key_ids=self.ring.ids,
                encrypts_with=self.ring.primary,
                problem="; ".join(problems) or None,
                beat_s=self.beat_s,
                started_at=self._started,
                seen_at=now,
                expires_at=registry.expiry(now, self.beat_s),
            ),
        )

    def _missing_note(self) -> str | None:
        if self._missing_primary is None:
            return None
        return f"does not hold the recorded primary key {self._missing_primary}"

    def __enter__(self) -> KeyWatch:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _lacks_primary(ring: KeyRing, primary: str) -> str:
    held = ", ".join(ring.ids)
    if ring.source == ENV_SOURCE:
        fix = (f"set {ENV_VAR} to the list that `calflow keys add` or `calflow keys rotate` "
               "printed")  # fmt: skip
    else:
        fix = "copy the key file of a machine whose `calflow keys status` lists that key"
    return (
        f"this process's keys (from {ring.source}: {held}) do not include key {primary}, "
        f"which encrypts the stored secrets; it would fail every run that needs one: {fix}"
    )
