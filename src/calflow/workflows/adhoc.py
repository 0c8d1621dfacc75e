"""Ad-hoc action runs: one action called directly (REST API, console, MCP), kept as a run.

A workflow's steps leave a trace in ``runs``/``run_steps``; an action someone calls by
hand must leave the same trace, so ``calflow runs list``, the API and the console show
what an AI agent or a person did, with the same masking. Such a run has no workflow
(``workflow_id`` is empty) and is named ``<source>:<app>.<action>`` (``mcp:cal_com.
book_meeting``). Its booking changes reach the event bus through the Runner's sink,
exactly like a booking made on the provider's page.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

from calflow.db.types import utcnow
from calflow.flowapp.model import ActionResult
from calflow.flowapp.runner import Runner
from calflow.integrations import Integration
from calflow.workflows.runs import RunStore, mask

SOURCES = frozenset({"api", "console", "mcp", "cli"})


def new_adhoc_run_id() -> str:
    """A fresh ad-hoc run id: ``act_`` followed by 24 hex digits."""
    return "act_" + secrets.token_hex(12)


def _booking_uid(data: Any) -> str:
    """The booking an action's result names, if any (``uid``, ``booking_uid``, ``booking.uid``)."""
    if not isinstance(data, Mapping):
        return ""
    for key in ("uid", "booking_uid", "bookingUid", "id"):
        value = data.get(key)
        if isinstance(value, str | int) and value != "":
            return str(value)
    nested = data.get("booking")
    return _booking_uid(nested) if isinstance(nested, Mapping) else ""


async def run_action_recorded(
    runner: Runner,
    workspace_id: str,
    integration: Integration,
    action_key: str,
    data: Mapping[str, Any] | None,
    *,
    source: str,
) -> tuple[ActionResult, str]:
    """Run ``action_key`` of ``integration``'s app and record it as a run; (result, run id).

    Invalid input raises ``ValidationError`` (and records nothing: nothing was attempted);
    unknown actions raise ``NotFoundError``. Every attempted call is recorded, whatever
    port it answered on, before and after the call (an intent row first, so a crash
    mid-call still shows as a started step).
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    if integration.workspace_id != workspace_id:
        raise ValueError("integration belongs to another workspace")
    app = runner.registry.app(integration.app_key)
    action_cls = app.action(action_key)
    prepared = action_cls.input_schema().prepare(data if data is not None else {})
    known_secrets = [s.get_secret_value() for s in integration.secrets.values()]
    store = RunStore(runner.store.engine, workspace_id)
    run_id = new_adhoc_run_id()
    started = utcnow()
    store.create(
        run_id,
        workflow_id="",
        workflow_name=f"{source}:{app.key}.{action_cls.key}"[:80],
        workflow_version=0,
        event_id="",
        provider=app.key,
        booking_uid="",
    )
    store.update(run_id, status="running", current_step=action_cls.key)
    row = store.start_step(run_id, action_cls.key, 1, mask(prepared, known_secrets), started)
    clock = time.perf_counter()
    try:
        result = await runner.run_action(app.key, action_cls.key, prepared, integration)
    except BaseException as exc:
        crash = {"code": type(exc).__name__, "message": str(exc)}
        store.finish_step(row, status="failed", port=None, output=None, error=mask(crash))
        store.update(run_id, status="failed", error=mask(crash, known_secrets))
        raise
    result.meta["duration_ms"] = round((time.perf_counter() - clock) * 1000, 1)
    error: dict[str, str | None] | None = (
        None if result.success else {"code": result.code, "message": result.message}
    )
    output = mask(result.data, known_secrets)
    store.finish_step(
        row,
        status="succeeded" if result.success else "failed",
        port=result.port,
        output=output,
        error=mask(error, known_secrets),
    )
    store.update(
        run_id,
        status="succeeded" if result.success else "failed",
        booking_uid=_booking_uid(result.data)[:200],
        current_step=None,
        error=mask(error, known_secrets),
    )
    return result, run_id
