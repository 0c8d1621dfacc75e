"""What durable steps use: the stores, the registry and one action runner per process.

DBOS calls steps as plain functions, so they reach calflow's objects through the one
:class:`Services` installed by the engine when it launches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dbos import DBOS

from calflow.errors import CalflowError
from calflow.events.inbox import Inbox
from calflow.events.ordering import ENDED, RESCHEDULED_AWAY
from calflow.flowapp.http import RetryPolicy
from calflow.flowapp.registry import Registry, default_registry
from calflow.flowapp.runner import Runner
from calflow.integrations import IntegrationStore
from calflow.workflows import templates
from calflow.workflows.runs import RunStore, mask
from calflow.workflows.store import WorkflowStore

_services: Services | None = None


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
    _queues: set[str] = field(default_factory=set)
    _gates: dict[tuple[int, str], asyncio.Semaphore] = field(default_factory=dict)
    _runners: dict[int, tuple[asyncio.AbstractEventLoop, Runner]] = field(default_factory=dict)

    @classmethod
    def for_store(cls, store: IntegrationStore, registry: Registry | None = None) -> Services:
        registry = registry or default_registry()
        return cls(
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
            found = (loop, Runner(self.registry, self.store, policy=policy))
            self._runners[id(loop)] = found
        return found[1]

    async def aclose(self) -> None:
        """Close every runner's connections, each on the event loop that opened them."""
        current = asyncio.get_running_loop()
        for loop, runner in list(self._runners.values()):
            if loop is current:
                await runner.aclose()
            elif loop.is_running():
                future = asyncio.run_coroutine_threadsafe(runner.aclose(), loop)
                await asyncio.wrap_future(future)
        self._runners.clear()

    async def call_action(
        self, run_id: str, step: dict[str, Any], ctx: dict[str, Any], attempt: int
    ) -> dict[str, Any]:
        """Render, record the intent, call the action, record the outcome; never raises.

        If an earlier execution of this step began calling its action and died before
        its outcome was recorded, the action is first asked whether that call took effect
        (``Action.reconcile``: Twilio looks the message up), so a crash at the worst
        moment does not send twice.
        """
        from calflow.workflows.durable import classify, failure, render_input

        done = await asyncio.to_thread(self.runs.recorded, run_id, step["id"], attempt)
        if done is not None:  # died between recording the outcome and the checkpoint
            done["finished_at"] = datetime.now(UTC).isoformat()
            return done
        started = datetime.now().astimezone()
        secrets: list[str] = []
        rendered: Any = None
        row_id: int | None = None
        try:
            rendered, integration_ref = render_input(step, ctx)
            integration = None
            if integration_ref:
                integration = await asyncio.to_thread(self.store.get, integration_ref)
            if integration is not None:
                secrets = [s.get_secret_value() for s in integration.secrets.values()]
            earlier = await asyncio.to_thread(self.runs.unfinished, run_id, step["id"])
            row_id = await asyncio.to_thread(
                self.runs.start_step, run_id, step["id"], attempt, mask(rendered, secrets), started
            )
            action = None
            if earlier is not None:
                action = await self.runner().reconcile_action(
                    step["app"], step["action"], rendered, integration, earlier[1]
                )
                cut = {"reason": "the process stopped during the call"}
                await asyncio.to_thread(self.runs.finish_step, earlier[0], status="interrupted",
                                        port=None, output=None, error=cut)  # fmt: skip
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
            await asyncio.to_thread(self.runs.finish_step, row_id, status=status,
                                    port=result["port"], **masked)  # fmt: skip
        result["finished_at"] = datetime.now(UTC).isoformat()
        clean: dict[str, Any] = json.loads(json.dumps(result, default=str))
        return clean

    def check(self, run_id: str, step: dict[str, Any], booking: dict[str, Any]) -> dict[str, Any]:
        """Before a step (and at each wake-up): follow the booking, compare with the clock,
        and record whether the run waits (and until when) or goes on."""
        from calflow.workflows.durable import MAX_WAIT_S, PAST_GRACE_S, due_time

        booking = dict(booking)
        now = datetime.now(UTC)
        if step.get("follows"):
            news = self.booking_news(str(booking.get("provider")), booking)
            if news.get("ended"):
                return {"ended": news["ended"]}
            if news.get("start") and news.get("start") != booking.get("start"):
                booking["moved_at"] = now.isoformat()
            booking.update({k: v for k, v in news.items() if k in ("uid", "start", "end")})
        due = due_time(step, booking)
        moved = {k: booking.get(k) for k in ("uid", "start", "end", "moved_at")}
        if due is not None and now < due:
            self.runs.update(run_id, status="waiting", current_step=step["id"], next_due_at=due)
            wait = min((due - now).total_seconds(), MAX_WAIT_S)
            return {"state": "wait", "wait_s": max(wait, 0.01), "booking": moved}
        # "Past" is judged against when calflow learned of the booking (or of its move),
        # not against when the run got here: a reminder that fell due while the engine
        # was down or busy is sent late, one that was due before the booking is skipped.
        learned = datetime.fromisoformat(str(booking.get("moved_at") or step["received_at"]))
        late = due is not None and (learned - due).total_seconds() > PAST_GRACE_S
        self.runs.update(run_id, status="running", current_step=step["id"], next_due_at=None)
        return {"state": "past" if late else "go", "booking": moved}

    async def queue_for(self, step: dict[str, Any], ctx: dict[str, Any]) -> str | None:
        """Register (once per process) and name the rate-limited queue of the step's integration."""
        from calflow.workflows.durable import render_input

        try:
            app = self.registry.app(step["app"])
            _, ref = render_input({**step, "input": {}}, ctx)
            if not ref or app.rate_limit is None:
                return None  # concurrency alone is kept in-process (see call_action)
            integration = await asyncio.to_thread(self.store.get, ref)
        except (CalflowError, templates.TemplateProblem):
            return None  # the call itself reports the problem
        name = f"calflow-int-{integration.id}"
        if name not in self._queues:
            limit = app.rate_limit
            await DBOS.register_queue_async(
                name,
                worker_concurrency=app.concurrency,
                limiter={"limit": limit[0], "period": limit[1]} if limit else None,
                polling_interval_sec=0.2,
            )
            self._queues.add(name)
        return name

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
        """Follow the booking's stored state: ended (with the reason) or moved."""
        uid = str(booking.get("uid") or "")
        news: dict[str, Any] = {}
        for _ in range(10):  # a chain of Cal.com reschedules, each a new uid
            state = self.inbox.booking_state(provider, uid)
            if state is None:
                return news
            if state.kind == RESCHEDULED_AWAY and state.event_id:
                moved = self.inbox.get(state.event_id)["event"]
                uid = str(moved.get("booking_uid") or uid)
                news.update(uid=uid, start=moved.get("start"), end=moved.get("end"))
                continue
            if state.phase == ENDED:
                reason = self._reason(state.event_id)
                return {"ended": f"booking {state.kind}" + (f": {reason}" if reason else "")}
            if state.start is not None:
                news.update(uid=uid, start=state.start.isoformat())
                if state.end is not None:
                    news["end"] = state.end.isoformat()
            return news
        return news

    def _reason(self, event_id: str | None) -> str | None:
        if not event_id:
            return None
        reason = self.inbox.get(event_id)["event"].get("reason")
        return str(reason) if reason else None
