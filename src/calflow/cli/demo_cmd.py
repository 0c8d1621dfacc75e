"""``calflow demo``: the sandbox plus the Cal.com app, end to end, in under a minute.

Starts the Cal.com sandbox on a free local port, points an integration at it, then
finds an event type and an open slot, books it, tries to book it again (a
``conflict``), reschedules and cancels, printing every result and its port.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import typer
from rich.markup import escape
from rich.panel import Panel

from calflow.cli.output import console
from calflow.errors import NotFoundError
from calflow.flowapp import ActionResult
from calflow.flowapp.runner import Runner
from calflow.integrations import IntegrationStore

DEMO_INTEGRATION = "sandbox-calcom"


def _ensure_integration(base_url: str, api_key: str) -> None:
    store = IntegrationStore.default()
    config = {"base_url": base_url}
    try:
        store.get(DEMO_INTEGRATION)
    except NotFoundError:
        store.add("cal_com", DEMO_INTEGRATION, config, {"api_key": api_key})
    else:
        store.update(DEMO_INTEGRATION, config=config, secrets={"api_key": api_key})


def _show(step: str, result: ActionResult, summary: str = "") -> None:
    colour = "green" if result.port == "success" else ("yellow" if result.success else "red")
    body = summary or (result.message or "")
    console.print(
        Panel(
            escape(body) or "(no data)",
            title=f"{step} → [bold {colour}]{result.port}[/]",
            title_align="left",
            expand=False,
        )
    )


def _booking_line(data: Any) -> str:
    if not isinstance(data, dict):
        return str(data)
    who = ", ".join(a.get("name", "") for a in data.get("attendees", []))
    when = f"{data.get('start')} → {data.get('end')}"
    return f"uid {data.get('uid')}  {when}  [{data.get('status')}] {who}"


async def _walkthrough() -> int:
    async with Runner() as runner:
        options = await runner.fetch_options("cal_com", "event_types", DEMO_INTEGRATION)
        console.print(
            "[bold]Event types:[/] " + ", ".join(f"{o.label} = {o.value}" for o in options)
        )
        event_type = options[0].value
        slots = await runner.run_action(
            "cal_com",
            "GetSlots",
            {
                "eventTypeId": event_type,
                "start": _day(1),
                "end": _day(8),
                "timeZone": "Europe/Paris",
            },
            DEMO_INTEGRATION,
        )
        found = slots.data["slots"] if slots.success else []
        _show(
            "GetSlots",
            slots,
            f"{len(found)} open slots; first: " + ", ".join(s["start"] for s in found[:3]),
        )
        if len(found) < 2:
            console.print("[red]the sandbox offered too few slots[/]")
            return 1
        attendee = {
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "timeZone": "Europe/Paris",
            "phoneNumber": "+33 6 12 34 56 78",
        }
        book = {
            "eventTypeId": event_type,
            "start": found[0]["start"],
            "attendee": attendee,
            "notes": "Booked by calflow demo",
        }
        booked = await runner.run_action("cal_com", "BookMeeting", book, DEMO_INTEGRATION)
        _show("BookMeeting", booked, _booking_line(booked.data))
        again = await runner.run_action("cal_com", "BookMeeting", book, DEMO_INTEGRATION)
        _show("BookMeeting (same slot again)", again)
        if not booked.success or not isinstance(booked.data, dict):
            return 1
        moved = await runner.run_action(
            "cal_com",
            "RescheduleBooking",
            {
                "bookingUid": booked.data["uid"],
                "start": found[-1]["start"],
                "reschedulingReason": "Demo reschedule",
            },
            DEMO_INTEGRATION,
        )
        _show("RescheduleBooking", moved, _booking_line(moved.data))
        new_uid = moved.data["uid"] if isinstance(moved.data, dict) else booked.data["uid"]
        cancelled = await runner.run_action(
            "cal_com",
            "CancelBooking",
            {"bookingUid": new_uid, "cancellationReason": "Demo over"},
            DEMO_INTEGRATION,
        )
        _show("CancelBooking", cancelled, _booking_line(cancelled.data))
        missing = await runner.run_action(
            "cal_com", "GetBooking", {"bookingUid": "no-such-uid"}, DEMO_INTEGRATION
        )
        _show("GetBooking (unknown uid)", missing)
        ok = booked.port == "success" and again.port == "conflict" and cancelled.success
        return 0 if ok else 1


def _day(offset: int) -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) + timedelta(days=offset)).date().isoformat()


def demo(
    seed: int = typer.Option(20, "--seed", help="Bookings to seed in the sandbox."),
    keep_running: bool = typer.Option(
        False, "--keep-running", help="Keep the sandbox up afterwards (Ctrl-C to stop)."
    ),
) -> None:
    """Run the sandbox and walk a booking through book → conflict → reschedule → cancel."""
    from calflow.sandbox import SandboxConfig
    from calflow.sandbox.server import run_in_thread

    config = SandboxConfig(seed=seed)
    with run_in_thread(config) as base_url:
        console.print(
            f"[bold]Cal.com sandbox[/] at {base_url}/calcom (API key {config.resolved_api_key})"
        )
        _ensure_integration(f"{base_url}/calcom", config.resolved_api_key)
        console.print(f"Integration [bold]{DEMO_INTEGRATION}[/] points at the sandbox.\n")
        code = asyncio.run(_walkthrough())
        if keep_running:
            console.print(f"\nSandbox state: {base_url}/_sandbox/state — Ctrl-C to stop.")
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(_forever())
    raise typer.Exit(code)


async def _forever() -> None:
    await asyncio.Event().wait()
