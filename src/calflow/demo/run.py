"""``calflow demo`` end to end: start everything, set it up, tell the story, check it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from calflow.flowapp.runner import Runner
from calflow.integrations import IntegrationStore
from calflow.netpolicy import operator_allowance
from calflow.settings import Settings

from . import prepare
from .outcome import expectations, summary
from .report import Timeline, print_summary
from .scenario import DemoFailure, Plan, Scenario
from .stack import Stack, running_stack
from .watch import Watcher

DEMO_TARGETS = "127.0.0.1,localhost"
"""The demo's own servers (``CALFLOW_ALLOW_PRIVATE`` for its run)."""


def demo_settings(home: Path) -> Settings:
    """The demo's settings: ``home``, always on SQLite there (whatever the environment says);
    its sandbox and receiver listen on loopback, which it allows as targets."""
    return Settings(home=home, database_url=None, allow_private=DEMO_TARGETS)


async def _setup(stack: Stack, runner: Runner, say: Timeline) -> dict[str, Any]:
    """Integrations, webhook and workflows; returns what the summary reports of them."""
    found = prepare.integrations(stack)
    for name, what in (
        (prepare.CALCOM, "the sandbox's Cal.com"),
        (prepare.SMS, "the sandbox's Twilio"),
        (prepare.EMAIL, "the SMTP sink"),
    ):
        say("setup", f"integration {name} ({found[name].app_key}) → {what}")
    hook_url, registered = await prepare.register_webhook(
        runner, found[prepare.CALCOM], stack.receiver_url
    )
    if not registered.success:
        raise DemoFailure(f"registering the Cal.com webhook failed: {registered.message}")
    say("setup", f"Cal.com webhook → {hook_url} (every booking trigger; secret kept encrypted)")
    workflows = []
    for stored, applied in prepare.apply_workflows(stack.store):
        timing = prepare.timing(stored)
        workflows.append({"name": stored.name, "timing": timing, "applied": applied})
        say("setup", f"workflow {stored.name} ({applied}): {timing}")
    return {
        "integrations": {name: i.id for name, i in found.items()},
        "webhook": hook_url,
        "workflows": workflows,
    }


def _urls(stack: Stack) -> dict[str, str]:
    return {
        "receiver": stack.receiver_url,
        "sandbox": stack.sandbox_url,
        "sandbox_state": f"{stack.sandbox_url}/_sandbox/state",
        "calcom": stack.calcom_url,
        "twilio": stack.twilio_url,
        "smtp": f"127.0.0.1:{stack.smtp_port}",
    }


def _console(stack: Stack) -> dict[str, str]:
    """The web console (served by the receiver) and a new API token to sign in with."""
    from calflow.workspaces import TokenStore

    _, token = TokenStore(stack.store.engine).create(stack.store.workspace_id, "calflow demo")
    url = f"{stack.receiver_url}/"
    return {"url": url, "token": token, "link": f"{url}#token={token}"}


def inspect_commands(home: Path) -> list[str]:
    prefix = f"CALFLOW_HOME={home}"
    if os.environ.get("CALFLOW_DATABASE_URL"):
        prefix += " CALFLOW_DATABASE_URL="
    return [f"{prefix} calflow {cmd}" for cmd in ("events list", "runs list", "workflows list")]


async def _wait_for(expected: list[Any], deadline: float) -> None:
    """Until every expectation is met, or ``deadline`` (monotonic) passes."""
    while True:
        if all(e.met() for e in expected) or time.monotonic() >= deadline:
            return
        await asyncio.sleep(0.1)


async def run_demo(
    home: Path,
    console: Console,
    *,
    wait_s: float = 90.0,
    keep_running: bool = False,
    on_summary: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the whole demo in ``home``; returns the summary (``ok`` says whether it passed).

    ``on_summary`` gets the summary as soon as it is known (before ``keep_running``
    serves on until cancelled).
    """
    say = Timeline(console)
    # a run still waiting when the demo stops is cancelled by DBOS with a warning: expected
    os.environ.setdefault("CALFLOW_DBOS_LOG_LEVEL", "ERROR")
    settings = demo_settings(home)
    store = await asyncio.to_thread(IntegrationStore.default, settings)
    say("setup", f"home {home} (SQLite); starting the sandbox, the receiver and the engine")
    allowance = operator_allowance(settings)
    async with (
        running_stack(settings, store) as stack,
        Runner(store=store, allowance=allowance) as runner,
    ):
        urls = _urls(stack)
        say("setup", f"sandbox {stack.sandbox_url} (Cal.com /calcom, Twilio /twilio, "
                     f"SavvyCal /savvycal), SMTP sink {urls['smtp']}")  # fmt: skip
        say("setup", f"receiver {stack.receiver_url} (POST /hooks/<integration id>), "
                     "workflow engine running")  # fmt: skip
        web = _console(stack)
        say("setup", f"web console {web['url']} (token {web['token']}; signed in: "
                     f"{web['link']}; stays up with --keep-running)")  # fmt: skip
        watcher = Watcher(stack, say)
        await watcher.prime()
        task = asyncio.create_task(watcher.run())
        try:
            result = await _tell(stack, runner, watcher, say, wait_s)
            result.update(home=str(home), urls=urls, inspect=inspect_commands(home), console=web)
            print_summary(console, result)
            if on_summary is not None:
                on_summary(result)
            if keep_running:
                await _serve_on(console, result)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return result


async def _tell(
    stack: Stack, runner: Runner, watcher: Watcher, say: Timeline, wait_s: float
) -> dict[str, Any]:
    """Set up, run the story, wait for what it should cause; the summary of it all."""
    scenario = Scenario(stack, runner, watcher, say)
    failure, info = None, {}
    try:
        info = await _setup(stack, runner, say)
        plan = Plan.from_now()
        prepare.open_host_around_the_clock(stack, plan.spans())
        began = time.monotonic()
        await scenario.run(plan)
        await _wait_for(expectations(watcher, scenario.out), began + wait_s)
    except (DemoFailure, TimeoutError) as exc:
        failure = str(exc)
    await watcher.poll()
    expected = expectations(watcher, scenario.out)
    return summary(watcher, scenario.out, expected, setup=info, duration_s=say.elapsed(),
                   failure=failure)  # fmt: skip


async def _serve_on(console: Console, result: dict[str, Any]) -> None:
    urls = result["urls"]
    console.print("\n[bold]Still running[/] (Ctrl-C to stop); new activity keeps printing.")
    console.print(f"  receiver  {urls['receiver']}/hooks/<integration id>", markup=False)
    console.print(f"  sandbox   {urls['sandbox']}  (state: {urls['sandbox_state']})",
                  highlight=False, soft_wrap=True, markup=False)  # fmt: skip
    web = result["console"]
    console.print(f"  console   {web['url']}  (token {web['token']})", highlight=False,
                  soft_wrap=True, markup=False)  # fmt: skip
    console.print(f"            signed in: {web['link']}", highlight=False, soft_wrap=True,
                  markup=False)  # fmt: skip
    home = result["home"]
    console.print(
        f"  try       CALFLOW_HOME={home} calflow fetch cal_com slots -i {prepare.CALCOM} "
        f"--context '{{\"eventTypeId\": {prepare.EVENT_TYPE_ID}}}'  (then book one with "
        f"calflow actions run cal_com BookMeeting -i {prepare.CALCOM} …)",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)
