"""``calflow serve``, ``calflow events`` and ``calflow webhooks``: the event bus from the CLI."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import typer

from calflow.cli.output import EXIT_FAILURE, console, print_json, table
from calflow.errors import ValidationError

events_app = typer.Typer(help="Booking events in calflow's inbox.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Provider webhooks pointing at calflow.", no_args_is_help=True)

CALCOM_TRIGGERS = [
    "BOOKING_CREATED",
    "BOOKING_RESCHEDULED",
    "BOOKING_CANCELLED",
    "BOOKING_REQUESTED",
    "BOOKING_REJECTED",
    "BOOKING_PAYMENT_INITIATED",
    "BOOKING_PAID",
    "BOOKING_NO_SHOW_UPDATED",
    "MEETING_STARTED",
    "MEETING_ENDED",
]


def _inbox() -> Any:
    from calflow.events.inbox import Inbox
    from calflow.integrations import IntegrationStore

    store = IntegrationStore.default()
    return Inbox(store.engine, store.workspace_id)


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
    CALFLOW_* setting it names."""  # fmt: skip
    import uvicorn

    from calflow.home import prepare_home, warn_loose_modes
    from calflow.server.admission import ServeLimits
    from calflow.server.app import create_app
    from calflow.server.protocol import server_config
    from calflow.settings import get_settings, overridden

    settings = overridden(
        get_settings(),
        {
            "header_timeout_s": header_timeout,
            "body_timeout_s": body_timeout,
            "keep_alive_s": keep_alive,
            "max_connections": max_connections,
            "max_requests": max_requests,
            "api_rate_limit": api_rate_limit,
        },
    )
    warn_loose_modes(settings.home)
    prepare_home(settings)

    async def go() -> None:
        config = server_config(
            create_app(settings=settings), host, port, ServeLimits.from_settings(settings)
        )
        # a long-running server: keep the start-up objects out of every collection and
        # collect the young generation less often (pauses showed in webhook latency tails)
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        server = uvicorn.Server(config)
        if workers:
            from calflow.workflows.children import WorkerChildren
            from calflow.workflows.engine import default_executor_id

            async with WorkerChildren(workers, default_executor_id()):
                await server.serve()
            return
        if not worker:
            await server.serve()
            return
        from calflow.workflows.engine import EngineThread

        # the engine on its own thread and loop: a busy batch never delays a webhook
        async with EngineThread(fast_loop_factory()):
            await server.serve()

    from calflow.keys.watch import KeyWatch

    # the keys are checked (and reported to `calflow keys`) before anything is served
    with KeyWatch.for_process("server", f"serve:{port}"):
        console.print(
            f"calflow serving on http://{host}:{port}  (webhooks: /hooks/<integration id>)"
        )
        with asyncio.Runner(loop_factory=fast_loop_factory()) as runner:
            runner.run(go())


def fast_loop_factory() -> Any:
    """uvloop's event loop where it is installed (uvicorn only picks it when it makes the
    loop itself), else asyncio's."""
    try:
        import uvloop
    except ImportError:  # e.g. Windows
        return None
    return uvloop.new_event_loop


@events_app.command("list")
def list_events(
    kind: str = typer.Option(None, "--kind", help="Only this kind (created, cancelled…)."),
    provider: str = typer.Option(None, "--provider", help="cal_com or savvycal."),
    since: str = typer.Option(None, "--since", help="Received at/after (date, time or 30d)."),
    booking: str = typer.Option(None, "--booking", help="Only this booking uid."),
    limit: int = typer.Option(100, "--limit", min=1, max=10_000, help="How many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Events, newest first."""
    from calflow.replay.timespec import parse_when
    from calflow.server.bodies import readable

    rows = readable(
        _inbox().list(
            kind=kind, provider=provider, since=parse_when(since, "since"), booking_uid=booking,
            limit=limit,
        )
    )  # fmt: skip
    if as_json:
        print_json(rows)
        return
    table(
        "events",
        ["id", "kind", "provider", "booking", "source", "deliveries", "received"],
        [
            (r["id"], r["kind"], r["provider"], r["booking_uid"], r["source"], r["deliveries"],
             r["received_at"])
            for r in rows
        ],
    )  # fmt: skip


@events_app.command("show")
def show_event(
    event_id: str = typer.Argument(..., help="Event id (evt_…)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One event with every delivery that mapped to it (and its source)."""
    from calflow.server.bodies import readable

    data = readable(_inbox().get(event_id))  # printable even if stored before bodies were checked
    if as_json:
        print_json(data)
    else:
        console.print_json(data=data)


@webhooks_app.command("register")
def register(
    app: str = typer.Argument(..., help="cal_com or savvycal."),
    integration: str = typer.Option(..., "--integration", "-i", help="Integration name or id."),
    url: str = typer.Option(..., "--url", help="calflow's public base URL (https://…)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Subscribe calflow's hook URL at the provider, with a secret calflow keeps."""
    from calflow.flowapp.runner import Runner
    from calflow.integrations import IntegrationStore

    store = IntegrationStore.default()
    found = store.get(integration)
    if found.app_key != app:
        raise ValidationError(f"integration {found.name!r} is a {found.app_key} integration")
    hook_url = f"{url.rstrip('/')}/hooks/{found.id}"
    if app == "cal_com":
        data: dict[str, Any] = {"subscriberUrl": hook_url, "triggers": CALCOM_TRIGGERS}
    elif app == "savvycal":
        data = {"url": hook_url}
    else:
        raise ValidationError(f"{app!r} has no webhooks calflow can receive (cal_com, savvycal)")

    async def go() -> Any:
        async with Runner(store=store) as runner:
            return await runner.run_action(app, "RegisterWebhook", data, found)

    result = asyncio.run(go())
    out = {**result.to_dict(), "hook_url": hook_url}
    if as_json:
        print_json(out)
    elif result.success:
        console.print(f"registered {hook_url} at {app} (secret stored encrypted)")
    else:
        console.print(f"[red]{result.code}[/]: {result.message}", highlight=False)
    if not result.success:
        raise typer.Exit(EXIT_FAILURE)
