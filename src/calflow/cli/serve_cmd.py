"""``calflow serve``: the webhook receiver, REST API, MCP and console, and the workflows.

Start-up order, so that what is printed is true: the settings are checked and logging
set up; the home is made private and its serve lock taken (a second server on the same
``CALFLOW_HOME`` is refused with the first one's pid and URL); the socket is bound and
listening (a busy port is one clear error, exit 2); the keys are checked; only then the
banner is printed and uvicorn serves on the socket, with the engine on a thread of its
own or in ``--workers N`` child processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import typer

from calflow.cli.output import console

if TYPE_CHECKING:
    from calflow.server.serve_lock import ServeLock
    from calflow.settings import Settings

__all__ = ["fast_loop_factory", "serve"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""Where prometheus-client's multiprocess mode keeps its files (``calflow.metrics``)."""
_METRICS_PREFIX = "calflow-metrics-"


def _limit(flag: str, text: str) -> Any:
    """A ``calflow serve`` flag that overrides the setting it names (unset: the setting)."""
    return typer.Option(None, flag, help=text, show_default=False)


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on."),
    worker: bool = typer.Option(
        True, "--worker/--no-worker", help="Also run workflows in this process (the default)."
    ),
    workers: int = typer.Option(
        0,
        "--workers",
        min=0,
        max=64,
        help="Run workflows in this many child worker processes instead (one per core).",
    ),
    log_format: str = typer.Option(
        None,
        "--log-format",
        click_type=click.Choice(["text", "json"]),
        help="Log lines as text or json (CALFLOW_LOG_FORMAT, default text).",
        show_default=False,
    ),
    header_timeout: float = _limit(
        "--header-timeout",
        "Seconds a client has to send a request's headers (CALFLOW_HEADER_TIMEOUT_S, default 10).",
    ),
    body_timeout: float = _limit(
        "--body-timeout",
        "Seconds a client has to send a request's body (CALFLOW_BODY_TIMEOUT_S, default 30).",
    ),
    keep_alive: int = _limit(
        "--keep-alive",
        "Seconds an idle keep-alive connection stays open (CALFLOW_KEEP_ALIVE_S, default 5).",
    ),
    max_connections: int = _limit(
        "--max-connections", "Open connections (CALFLOW_MAX_CONNECTIONS, default 1000)."
    ),
    max_requests: int = _limit(
        "--max-requests",
        "Requests in flight; past them 503 with Retry-After (CALFLOW_MAX_REQUESTS, default 256).",
    ),
    api_rate_limit: str = _limit(
        "--api-rate-limit",
        "Calls per API token, e.g. 20/second;600/minute, empty for none (CALFLOW_API_RATE_LIMIT).",
    ),
) -> None:
    """Run the calflow server: webhook receiver at /hooks/{integration_id}, and workflows.

    Its timeouts and limits are in docs/security.md ("Limits"); each flag overrides the
    CALFLOW_* setting it names. One line is logged per request and per workflow step
    (CALFLOW_LOG_LEVEL: debug, info, warning, error)."""  # fmt: skip
    from calflow import logs
    from calflow.home import make_private_dir, prepare_home, warn_loose_modes
    from calflow.server.listen import listen
    from calflow.server.serve_lock import ServeLock
    from calflow.settings import get_settings, overridden

    settings = overridden(
        get_settings(),
        {
            "log_format": log_format,
            "header_timeout_s": header_timeout,
            "body_timeout_s": body_timeout,
            "keep_alive_s": keep_alive,
            "max_connections": max_connections,
            "max_requests": max_requests,
            "api_rate_limit": api_rate_limit,
        },
    )
    logs.configure(settings.log_level, settings.log_format)
    os.environ["CALFLOW_LOG_FORMAT"] = settings.log_format  # the child workers log alike
    warn_loose_modes(settings.home)
    make_private_dir(settings.home)
    with ServeLock(settings.home) as lock:
        sock = listen(host, port)
        with contextlib.closing(sock), _metrics_dir(workers, lock) as metrics_dir:
            url = _url(host, sock)
            lock.record(url, metrics_dir)
            prepare_home(settings)
            _run(settings, sock, url, worker=worker, workers=workers)


def _url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


@contextlib.contextmanager
def _metrics_dir(workers: int, lock: ServeLock) -> Iterator[str | None]:
    """With child workers, prometheus-client's multiprocess mode in a fresh directory
    (outside the home), set before anything imports ``prometheus_client``; removed after,
    or by the next server on the home when this one is killed (uvicorn re-raises SIGTERM
    once it has stopped, so no clean-up of this process runs after it)."""
    _remove_left_over(lock)
    if not workers or os.environ.get(MULTIPROC_ENV):
        yield None
        return
    path = tempfile.mkdtemp(prefix=_METRICS_PREFIX)
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def _remove_left_over(lock: ServeLock) -> None:
    """The metrics directory the previous server on this home left, if it is one."""
    left = Path(lock.previous.metrics_dir) if lock.previous and lock.previous.metrics_dir else None
    if left is None or not left.name.startswith(_METRICS_PREFIX) or left.is_symlink():
        return
    with contextlib.suppress(OSError):
        if left.stat().st_uid == os.getuid():
            shutil.rmtree(left)


def _run(settings: Settings, sock: socket.socket, url: str, *, worker: bool, workers: int) -> None:
    import uvicorn

    from calflow.keys.watch import KeyWatch
    from calflow.server.admission import ServeLimits
    from calflow.server.app import create_app
    from calflow.server.protocol import server_config

    port = sock.getsockname()[1]

    async def go() -> None:
        host, _ = sock.getsockname()[:2]
        limits = ServeLimits.from_settings(settings)
        config = server_config(create_app(settings=settings), host, port, limits)
        # a long-running server: keep the start-up objects out of every collection and
        # collect the young generation less often (pauses showed in webhook latency tails)
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        server = uvicorn.Server(config)
        if workers:
            from calflow.workflows.children import WorkerChildren
            from calflow.workflows.engine import default_executor_id

            async with WorkerChildren(workers, default_executor_id()):
                await server.serve(sockets=[sock])
            return
        if not worker:
            await server.serve(sockets=[sock])
            return
        from calflow.workflows.engine import EngineThread

        # the engine on its own thread and loop: a busy batch never delays a webhook
        async with EngineThread(fast_loop_factory()):
            await server.serve(sockets=[sock])

    # the keys are checked (and reported to `calflow keys`) before anything is served
    with KeyWatch.for_process("server", f"serve:{port}"):
        _banner(settings, url, worker=worker, workers=workers)
        with asyncio.Runner(loop_factory=fast_loop_factory()) as runner:
            runner.run(go())


def _banner(settings: Settings, url: str, *, worker: bool, workers: int) -> None:
    from sqlalchemy.engine import make_url

    database = make_url(settings.resolved_database_url()).render_as_string(hide_password=True)
    if workers:
        engine = f"{workers} child worker processes"
    else:
        engine = "in this process" if worker else "not here (--no-worker: run `calflow worker`)"
    metrics = "/metrics (bearer CALFLOW_METRICS_TOKEN)" if settings.metrics_token else "off"
    lines = [
        f"calflow serving on {url}",
        f"  console    {url}/",
        f"  API        {url}/api/v1  (OpenAPI: {url}/openapi.json)",
        f"  MCP        {url}/mcp",
        f"  webhooks   {url}/hooks/<integration id>",
        f"  metrics    {metrics}",
        f"  database   {database}",
        f"  home       {settings.home}",
        f"  workflows  {engine}",
    ]
    console.print("\n".join(lines), highlight=False, soft_wrap=True, markup=False)


def fast_loop_factory() -> Any:
    """uvloop's event loop where it is installed (uvicorn only picks it when it makes the
    loop itself), else asyncio's."""
    try:
        import uvloop
    except ImportError:  # e.g. Windows
        return None
    return uvloop.new_event_loop
