"""What durable steps use: the stores, the registry and one action runner per process.

DBOS calls steps as plain functions, so they reach calflow's objects through the one
:class:`Services` installed by the engine when it launches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from calflow.errors import CalflowError
from calflow.events.inbox import Inbox
from calflow.events.ordering import ENDED, RESCHEDULED_AWAY, seat_uid
from calflow.flowapp.http import RetryPolicy
from calflow.flowapp.registry import Registry, default_registry
from calflow.flowapp.runner import Runner
from calflow.integrations import Integration, IntegrationStore
from calflow.netpolicy import Allowance
from calflow.workflows import templates
from calflow.workflows.limits import take_slot
from calflow.workflows.runs import RunStore, mask
from calflow.workflows.steplog import StepLog, histories, seen_in
from calflow.workflows.steps import classify, failure, render_input
from calflow.workflows.store import WorkflowStore

_services: Services | None = None
BATCH_CACHE: ContextVar[dict[str, Integration] | None] = ContextVar("batch_cache", default=None)
"""Integrations looked up by the batch being executed (set by ``execute_batch``)."""


def services() -> Services:
    if _services is None:
        raise RuntimeError("the workflow engine is not running (Engine.launch installs it)")
    return _services


def install(value: Services | None) -> None:
    global _services
    _services = value


@dataclass
class Services:
    store: IntegrationStore
    registry: Registry
    inbox: Inbox
    runs: RunStore
    workflows: WorkflowStore
    lease_s: float = 60.0
    """How long a worker holds the runs it took; renewed while their batch runs."""
    allowance: Allowance | None = None
    """Non-public targets steps may call (None: the process's ``CALFLOW_ALLOW_PRIVATE``)."""
    _gates: dict[tuple[int, str], asyncio.Semaphore] = field(default_factory=dict)
    _runners: dict[int, tuple[asyncio.AbstractEventLoop, Runner]] = field(default_factory=dict)
    _spaces: dict[str, Services] = field(default_factory=dict)
    _steplogs: dict[int, tuple[asyncio.AbstractEventLoop, StepLog]] = field(default_factory=dict)

    def workspace(self, workspace_id: str) -> Services:
        """The services of another workspace (same database, registry and keys): one
        engine runs every workspace's workflows, each with its own integrations, and
        the booking changes its actions report go to that workspace's event bus."""
        if workspace_id == self.store.workspace_id:
            return self
        found = self._spaces.get(workspace_id)
        if found is None:
            store = IntegrationStore(self.store.engine, self.store.vault, workspace_id)
            found = Services.for_store(store, self.registry, self.allowance)
            self._spaces[workspace_id] = found
        return found

    @classmethod
    def for_store(
        cls,
        store: IntegrationStore,
        registry: Registry | None = None,
        allowance: Allowance | None = None,
    ) -> Services:
        registry = registry or default_registry()
        return cls(
            allowance=allowance,
            store=store,
            registry=registry,
            inbox=Inbox(store.engine, store.workspace_id),
            runs=RunStore(store.engine, store.workspace_id),
            workflows=WorkflowStore(store.engine, store.workspace_id, registry),
        )

    def runner(self) -> Runner:
        """A runner for the running event loop (DBOS may run steps on more than one)."""
        loop = asyncio.get_running_loop()
        found = self._runners.get(id(loop))
        if found is None:
            # one HTTP attempt per action call: the workflow's retry policy decides the rest
            policy = RetryPolicy(max_retries=0, max_rate_retries=0, max_total_wait_s=0)
            found = (
                loop,
                Runner(self.registry, self.store, policy=policy, allowance=self.allowance),
            )
            self._runners[id(loop)] = found
        return found[1]

    async def aclose(self) -> None:
        """Close every runner's connections, each on the event loop that opened them."""
        for other in list(self._spaces.values()):
            await other.aclose()
        self._spaces.clear()
        current = asyncio.get_running_loop()
        for loop, runner in list(self._runners.values()):
            if loop is current:
                await runner.aclose()
            elif loop.is_running():
                future = asyncio.run_coroutine_threadsafe(runner.aclose(), loop)
                await asyncio.wrap_future(future)
        self._runners.clear()

    def steplog(self) -> StepLog:
        """The group writer of intent and outcome rows for the running event loop."""
        loop = asyncio.get_running_loop()
        found = self._steplogs.get(id(loop))
        if found is None or found[0] is not loop:
            found = self._steplogs[id(loop)] = (loop, StepLog(self.store.engine))
        return found[1]

    async def call_action(
        self,
        run_id: str,
        step: dict[str, Any],
        ctx: dict[str, Any],
        attempt: int,
        history: Sequence[Any] | None = None,
    ) -> dict[str, Any]:
        """Render, record the intent, call the action, record the outcome; never raises.

        If an earlier execution of this step began calling its action and died before
        its outcome was recorded, the action is first asked whether that call took effect
        (``Action.reconcile``: Twilio looks the message up), so a crash at the worst
        moment does not send twice. ``history``: the run's step rows, read beforehand for
        a whole batch (else read here).
        """
        if history is None:
            history = (await asyncio.to_thread(histories, self.store.engine, [run_id])).get(
                run_id, []
            )
        seen = seen_in(history, step["id"], attempt)
        done: dict[str, Any] | None = seen["recorded"]
        if done is not None:  # died between recording the outcome and saving the run
            done["finished_at"] = datetime.now(UTC).isoformat()
            return done
        started = datetime.now().astimezone()
        secrets: list[str] = []
        rendered: Any = None
        row_id: int | None = None
        try:
            if templates.loops(step.get("input")):
                rendered, integration_ref = await asyncio.to_thread(render_input, step, ctx)
            else:
                rendered, integration_ref = render_input(step, ctx)
            integration = None
            if integration_ref:
                integration = await asyncio.to_thread(self.integration, integration_ref)
            if integration is not None:
                secrets = [s.get_secret_value() for s in integration.secrets.values()]
                if self.registry.app(step["app"]).rate_limit is not None:
                    wait = await asyncio.to_thread(self.throttle, step["app"], integration.id)
                    if wait:
                        return {"throttled": wait}
            earlier = seen["unfinished"]
            log = self.steplog()
            row_id = await log.start(run_id, step["id"], attempt, mask(rendered, secrets), started)
            action = None
            if earlier is not None:
                action = await self.runner().reconcile_action(
                    step["app"], step["action"], rendered, integration, earlier[1]
                )
                cut = {"reason": "the process stopped during the call"}
                await log.finish(earlier[0], status="interrupted", port=None, output=None,
                                 error=cut)  # fmt: skip
            if action is None:
                async with self._gate(step["app"], integration):
                    action = await self.runner().run_action(
                        step["app"], step["action"], rendered, integration, raise_retryable=True
                    )
            result = {**action.to_dict(), "retryable": False}
        except templates.TemplateProblem as exc:
            result = failure("TEMPLATE_ERROR", str(exc))
        except (CalflowError, Exception) as exc:
            result = classify(exc)
        output = {"data": result.get("data")} if result["success"] else None
        error = None
        if not result["success"]:
            error = {k: result.get(k) for k in ("code", "message", "retry_after", "details")
                     if result.get(k) is not None}  # fmt: skip
        status = "succeeded" if result["success"] else "failed"
        masked = {"output": mask(output, secrets), "error": mask(error, secrets)}
        if row_id is None:
            await asyncio.to_thread(self.runs.record_step, run_id, step["id"], attempt,
                                    status=status, port=result["port"],
                                    input=mask(rendered, secrets), started_at=started,
                                    **masked)  # fmt: skip
        else:
            await self.steplog().finish(row_id, status=status, port=result["port"], **masked)
        result["finished_at"] = datetime.now(UTC).isoformat()
        clean: dict[str, Any] = json.loads(json.dumps(result, default=str))
        return clean

    def integration(self, ref: str) -> Integration:
        """An integration by name or id; the runs of one batch share one lookup (see
        ``batch_cache``), so an edit takes effect from the next batch on."""
        cache = BATCH_CACHE.get()
        found = cache.get(ref) if cache is not None else None
        if found is None:
            found = self.store.get(ref)
            if cache is not None:
                cache[ref] = found
        return found

    def throttle(self, app_key: str, integration_id: str) -> float:
        """0 if a call of this integration may go now (and count it), else seconds to wait:
        the app's rate limit, shared by every worker through the database."""
        limit = self.registry.app(app_key).rate_limit
        if limit is None:
            return 0.0
        return take_slot(self.store.engine, f"int:{integration_id}", limit[0], limit[1])

    def _gate(self, app_key: str, integration: Any) -> Any:
        """At most ``app.concurrency`` calls of one integration in flight in this worker."""
        app = self.registry.app(app_key)
        if integration is None or not app.concurrency:
            return contextlib.nullcontext()
        loop = asyncio.get_running_loop()
        key = (id(loop), integration.id)
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = asyncio.Semaphore(app.concurrency)
        return gate

    def booking_news(self, provider: str, booking: dict[str, Any]) -> dict[str, Any]:
        """Follow the booking's stored state: ended (with the reason) or moved.

        A run of one seat (``booking["seat"]``) follows that seat first: it ends when the
        seat left, moves when the seat moved alone, and otherwise follows its booking."""
        uid = str(booking.get("uid") or "")
        seat = booking.get("seat")
        news: dict[str, Any] = {}
        for _ in range(10):  # a chain of Cal.com reschedules, each a new uid
            own = self.inbox.booking_state(provider, seat_uid(uid, seat)) if seat else None
            if own is not None and own.kind == RESCHEDULED_AWAY and own.event_id:
                uid = self._follow(own.event_id, uid, news)
                continue
            if own is not None and own.phase == ENDED:
                reason = self._reason(own.event_id)
                return {"ended": "seat cancelled" + (f": {reason}" if reason else "")}
            state = self.inbox.booking_state(provider, uid)
            if state is None:
                return news
            if state.kind == RESCHEDULED_AWAY and state.event_id:
                uid = self._follow(state.event_id, uid, news)
                continue
            if state.phase == ENDED:
                reason = self._reason(state.event_id)
                return {"ended": f"booking {state.kind}" + (f": {reason}" if reason else "")}
            latest = own if own is not None and own.start is not None else state
            if own is not None and state.start is not None and own.start is not None:
                latest = own if own.occurred_at >= state.occurred_at else state
            if latest.start is not None:
                news.update(uid=uid, start=latest.start.isoformat())
                if latest.end is not None:
                    news["end"] = latest.end.isoformat()
            return news
        return news

    def _follow(self, event_id: str, uid: str, news: dict[str, Any]) -> str:
        """The booking a reschedule moved to (its uid, start and end go into ``news``)."""
        moved = self.inbox.get(event_id)["event"]
        uid = str(moved.get("booking_uid") or uid)
        news.update(uid=uid, start=moved.get("start"), end=moved.get("end"))
        return uid

    def _reason(self, event_id: str | None) -> str | None:
        if not event_id:
            return None
        reason = self.inbox.get(event_id)["event"].get("reason")
        return str(reason) if reason else None
