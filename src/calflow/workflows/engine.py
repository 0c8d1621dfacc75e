"""The workflow engine's life cycle in one process: DBOS, the runs queue, the dispatcher.

SQLite (the default): DBOS keeps its checkpoints in ``CALFLOW_HOME/dbos.sqlite``
beside calflow's database, and ``calflow serve`` runs the engine in-process.
PostgreSQL: DBOS uses the same database (its own ``dbos`` schema), and any number
of ``calflow worker`` processes share the work.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any

from dbos import DBOS

from calflow.integrations import IntegrationStore
from calflow.settings import Settings, get_settings
from calflow.workflows import services as services_mod
from calflow.workflows.dispatch import RUNS_QUEUE, Dispatcher
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
        self.services = Services.for_store(self.store)
        self.concurrency = concurrency
        self.executor_id = executor_id
        self.dispatch = dispatch
        self.dispatcher = Dispatcher(self.services)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.settings.home.mkdir(parents=True, exist_ok=True)
        services_mod.install(self.services)
        config = dbos_config(self.settings, self.executor_id)
        await asyncio.to_thread(lambda: DBOS(config=config))  # type: ignore[arg-type]
        await asyncio.to_thread(DBOS.launch)
        await DBOS.register_queue_async(
            # no default limit: a run waiting days for its reminder would hold a slot (DBOS
            # counts sleeping workflows); action calls are bounded per integration instead
            RUNS_QUEUE,
            worker_concurrency=self.concurrency or None,
            polling_interval_sec=0.2,
        )
        if self.dispatch:
            self._stop = asyncio.Event()
            self._task = asyncio.create_task(self.dispatcher.run_forever(stop=self._stop))

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.services.aclose()
        await asyncio.to_thread(DBOS.destroy)
        services_mod.install(None)

    async def __aenter__(self) -> WorkflowEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
