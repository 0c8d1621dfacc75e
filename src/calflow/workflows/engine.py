"""The workflow engine's life cycle in one process: DBOS, the dispatcher, the scheduler.

SQLite (the default): DBOS keeps its checkpoints in ``CALFLOW_HOME/dbos.sqlite``
beside calflow's database, and ``calflow serve`` runs the engine in-process, on a
thread and event loop of its own (:class:`EngineThread`).
PostgreSQL: DBOS uses the same database (its own ``dbos`` schema), and any number
of ``calflow worker`` processes share the work.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from dbos import DBOS

from calflow.home import prepare_home
from calflow.integrations import IntegrationStore
from calflow.netpolicy import operator_allowance
from calflow.retention import Ages, Pruner
from calflow.settings import Settings, get_settings
from calflow.workflows import services as services_mod
from calflow.workflows.dispatch import Dispatcher
from calflow.workflows.scheduler import Scheduler
from calflow.workflows.services import Services

log = logging.getLogger("calflow.engine")
APP_VERSION = "calflow-workflows-1"
"""Fixed, so that runs waiting for days are recovered by the next release too."""


def dbos_config(settings: Settings, executor_id: str | None = None) -> dict[str, Any]:
    url = settings.resolved_database_url()
    if url.startswith("sqlite"):
        system_url = f"sqlite:///{settings.home / 'dbos.sqlite'}"
    else:
        system_url = url.replace("postgresql+psycopg://", "postgresql://")
    config: dict[str, Any] = {
        "name": "calflow",
        "system_database_url": system_url,
        "application_version": APP_VERSION,
        "log_level": os.environ.get("CALFLOW_DBOS_LOG_LEVEL", "WARNING"),
        "notification_listener_polling_interval_sec": 0.1,
    }
    if executor_id:
        config["executor_id"] = executor_id
    return config


def default_executor_id() -> str:
    return os.environ.get("CALFLOW_WORKER_ID") or f"{socket.gethostname()}"


class WorkflowEngine:
    """Launches DBOS and the dispatcher; ``stop`` shuts both down."""

    def __init__(
        self,
        store: IntegrationStore | None = None,
        settings: Settings | None = None,
        *,
        concurrency: int | None = None,
        executor_id: str | None = None,
        dispatch: bool = True,
    ) -> None:
        self.settings = settings or get_settings()
        self.store = store or IntegrationStore.default(self.settings)
        self.services = Services.for_store(self.store, allowance=operator_allowance(self.settings))
        self.concurrency = concurrency
        self.executor_id = executor_id or default_executor_id()
        self.dispatch = dispatch
        self.scheduler = Scheduler(self.services, self.executor_id, batch=concurrency or 200)
        self.dispatcher = Dispatcher(
            self.services,
            on_runs=self.scheduler.nudge,
            lock_path=self.settings.home / "dispatch.lock",
            pruner=Pruner(
                self.store.engine,
                Ages.from_settings(self.settings),
                every_s=self.settings.prune_every_s,
                dbos=True,
            ),
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        prepare_home(self.settings)  # 0700, and dbos.sqlite made 0600 before DBOS opens it
        services_mod.install(self.services)
        config = dbos_config(self.settings, self.executor_id)
        await asyncio.to_thread(lambda: DBOS(config=config))  # type: ignore[arg-type]
        await asyncio.to_thread(DBOS.launch)  # resumes the batches a crash cut off
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self.scheduler.run_forever(self._stop))]
        if self.dispatch:
            self._tasks.append(asyncio.create_task(self.dispatcher.run_forever(stop=self._stop)))

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            await task
        self._tasks = []
        await self.services.aclose()
        await asyncio.to_thread(DBOS.destroy)
        services_mod.install(None)

    async def __aenter__(self) -> WorkflowEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class EngineThread:
    """The engine on a thread of its own, with its own event loop (``calflow serve``).

    The receiver, API and console keep the server's event loop to themselves: a batch of
    runs (templates, SQL, provider calls) never holds a webhook's answer behind it. The
    two loops still share the GIL; ``start`` raises what the engine's start raised, and
    ``stop`` waits until the engine has stopped cleanly."""

    def __init__(self, loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
                 **options: Any) -> None:  # fmt: skip
        self.options = options
        self.loop_factory = loop_factory
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    def _main(self) -> None:
        with asyncio.Runner(loop_factory=self.loop_factory) as runner:
            runner.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        engine = WorkflowEngine(**self.options)
        try:
            await engine.start()
        except BaseException as exc:
            self._error = exc
            self._started.set()
            return
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            await engine.stop()

    async def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="calflow-engine", daemon=True)
        self._thread.start()
        await asyncio.to_thread(self._started.wait)
        if self._error is not None:
            await asyncio.to_thread(self._thread.join)
            raise self._error

    async def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    async def __aenter__(self) -> EngineThread:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
