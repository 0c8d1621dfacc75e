"""The demo's setup: integrations, the Cal.com webhook, workflows with short offsets.

Everything is "create or update", so running the demo again in the same home works.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from calflow.cli.events_cmd import CALCOM_TRIGGERS
from calflow.errors import ConfigError, NotFoundError
from calflow.flowapp import ActionResult
from calflow.flowapp.runner import Runner
from calflow.integrations import Integration, IntegrationStore
from calflow.sandbox.calcom.state import Availability
from calflow.workflows import builtin
from calflow.workflows.store import Applied, StoredWorkflow, WorkflowStore

from .stack import Stack

CALCOM = "demo-calcom"
SMS = "sms"
EMAIL = "email"
FROM_NUMBER = "+15005550006"
"""A number the Twilio sandbox's account owns (Twilio's test-credentials sender)."""
FROM_ADDRESS = "calflow demo <demo@calflow.invalid>"
HOST_USER_ID = 1
"""The sandbox's ``demo`` user: owner of the API key, host of event type 101."""
EVENT_TYPE_ID = 101
"""The sandbox's "30 Minute Meeting"."""
SHORT_OFFSETS = {"before_start": "40s", "after_end": "5s"}
"""The demo's timing: the built-ins' 24 h / 1 h become seconds."""
_ZONES = ("Europe/Paris", "UTC", "Asia/Tokyo", "America/New_York")


def _upsert(
    store: IntegrationStore, app: str, name: str, config: dict[str, Any], secrets: dict[str, str]
) -> Integration:
    try:
        found = store.get(name)
    except NotFoundError:
        return store.add(app, name, config, secrets)
    if found.app_key != app:
        raise ConfigError(
            f"this demo home has an integration {name!r} of app {found.app_key!r}; "
            "run the demo with --fresh (or another --home)"
        )
    return store.update(found.id, config=config, secrets=secrets)


def integrations(stack: Stack) -> dict[str, Integration]:
    """``demo-calcom``, ``sms`` and ``email``, pointing at this run's sandbox."""
    cfg = stack.sandbox_config
    store = stack.store
    return {
        CALCOM: _upsert(
            store, "cal_com", CALCOM, {"base_url": stack.calcom_url},
            {"api_key": cfg.resolved_api_key},
        ),
        SMS: _upsert(
            store, "twilio", SMS,
            {"base_url": stack.twilio_url, "account_sid": cfg.resolved_twilio_account_sid,
             "from_number": FROM_NUMBER},
            {"auth_token": cfg.resolved_twilio_auth_token},
        ),
        EMAIL: _upsert(
            store, "email", EMAIL,
            {"host": "127.0.0.1", "port": str(stack.smtp_port), "security": "none",
             "from_address": FROM_ADDRESS, "timeout_s": "10"},
            {},
        ),
    }  # fmt: skip


async def register_webhook(
    runner: Runner, integration: Integration, receiver_url: str
) -> tuple[str, ActionResult]:
    """What ``calflow webhooks register cal_com -i demo-calcom --url RECEIVER`` does."""
    hook_url = f"{receiver_url.rstrip('/')}/hooks/{integration.id}"
    data = {"subscriberUrl": hook_url, "triggers": CALCOM_TRIGGERS}
    result = await runner.run_action("cal_com", "RegisterWebhook", data, integration.id)
    runner.forget()  # the action stored the new secret
    return hook_url, result


def shorten(definition: dict[str, Any]) -> dict[str, Any]:
    """A copy of a workflow definition with every ``at`` offset made demo-short."""
    out = copy.deepcopy(definition)
    changed = []
    for step in out.get("steps") or []:
        at = step.get("at")
        if isinstance(at, dict):
            for key, value in list(at.items()):
                if key in SHORT_OFFSETS:
                    at[key] = SHORT_OFFSETS[key]
                    changed.append(f"{key} {value} → {SHORT_OFFSETS[key]}")
    if changed:
        note = "Demo timing: " + ", ".join(changed) + "."
        out["description"] = f"{out.get('description', '')} {note}".strip()
    return out


def apply_workflows(store: IntegrationStore) -> list[tuple[StoredWorkflow, Applied]]:
    """Every ready-made workflow, with short offsets, created or updated by name."""
    workflows = WorkflowStore(store.engine, store.workspace_id)
    return [workflows.apply(shorten(builtin.load(name))) for name in builtin.names()]


def timing(stored: StoredWorkflow) -> str:
    """``sms: before_start 40s`` for the steps that wait, else ``immediately``."""
    waits = [f"{s.id}: {s.at.text}" for s in stored.definition.steps if s.at.anchor != "event"]
    return ", ".join(waits) or "immediately"


def _crosses_midnight(zone: str, spans: Iterable[tuple[datetime, datetime]]) -> bool:
    tz = ZoneInfo(zone)
    return any(
        s.astimezone(tz).date() != (e - timedelta(microseconds=1)).astimezone(tz).date()
        for s, e in spans
    )


def open_host_around_the_clock(stack: Stack, spans: Iterable[tuple[datetime, datetime]]) -> None:
    """Let the sandbox's demo host take bookings at any hour, at no notice.

    The seeded host works 9-17 (Paris) on weekdays and wants two hours' notice, which
    would make the demo depend on when it runs. A booking may not cross the host's
    local midnight either, so if one of ``spans`` would, the host moves to a time zone
    where none does.
    """
    state = stack.sandbox.calcom.state
    host = state.users[HOST_USER_ID]
    host.availability = Availability(weekdays=tuple(range(7)), start_minute=0, end_minute=1440)
    state.event_types[EVENT_TYPE_ID].minimum_notice_min = 0
    spans = list(spans)
    if _crosses_midnight(host.time_zone, spans):
        host.time_zone = next(z for z in _ZONES if not _crosses_midnight(z, spans))
