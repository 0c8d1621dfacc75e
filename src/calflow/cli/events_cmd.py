"""``calflow events`` and ``calflow webhooks``: the event bus from the CLI (``calflow serve``
is in ``calflow.cli.serve_cmd``)."""

from __future__ import annotations

import asyncio
from typing import Any

import typer

from calflow.cli.output import EXIT_FAILURE, console, print_json, table
from calflow.cli.scope import scope, workspace_option
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


@events_app.command("list")
def list_events(
    kind: str = typer.Option(None, "--kind", help="Only this kind (created, cancelled…)."),
    provider: str = typer.Option(None, "--provider", help="cal_com or savvycal."),
    since: str = typer.Option(None, "--since", help="Received at/after (date, time or 30d)."),
    booking: str = typer.Option(None, "--booking", help="Only this booking uid."),
    limit: int = typer.Option(100, "--limit", min=1, max=10_000, help="How many, newest first."),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Events, newest first."""
    from calflow.replay.timespec import parse_when
    from calflow.server.bodies import readable

    rows = readable(
        scope(workspace).inbox().list(
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
    event_id: str = typer.Argument(..., help="Event id (evt_…) or a unique prefix of it."),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One event with every delivery that mapped to it (and its source)."""
    from calflow.db.refs import EVENT
    from calflow.server.bodies import readable

    found = scope(workspace)
    # printable even if stored before bodies were checked
    data = readable(found.inbox().get(found.ref(EVENT, event_id)))
    if as_json:
        print_json(data)
    else:
        console.print_json(data=data)


@webhooks_app.command("register")
def register(
    app: str = typer.Argument(..., help="cal_com or savvycal."),
    integration: str = typer.Option(..., "--integration", "-i", help="Integration name or id."),
    url: str = typer.Option(..., "--url", help="calflow's public base URL (https://…)."),
    workspace: str = workspace_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Subscribe calflow's hook URL at the provider, with a secret calflow keeps."""
    from calflow.db.refs import INTEGRATION
    from calflow.flowapp.runner import Runner

    chosen = scope(workspace)
    store = chosen.store
    found = store.get(chosen.ref(INTEGRATION, integration))
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
