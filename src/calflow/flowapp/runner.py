"""Running actions and fetchers: validate, resolve the integration, execute, map failures."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from calflow.errors import (
    AuthError,
    CalflowError,
    ConfigError,
    FatalProviderError,
    FieldError,
    InternalError,
    RateLimitError,
    RetryableError,
    ValidationError,
)
from calflow.flowapp.app import App
from calflow.flowapp.context import ActionContext, BookingSink
from calflow.flowapp.http import RetryPolicy
from calflow.flowapp.model import ActionResult, Option
from calflow.flowapp.registry import Registry, default_registry
from calflow.net.clients import outbound_client
from calflow.netpolicy import Allowance, binding, check_fields, operator_allowance

if TYPE_CHECKING:
    from calflow.integrations import Integration, IntegrationStore

log = logging.getLogger("calflow.runner")


def mask_secrets(text: str, integration: Integration | None) -> str:
    """``text`` with every secret value of ``integration`` replaced by a mask."""
    if integration is None:
        return text
    for secret in integration.secrets.values():
        value = secret.get_secret_value()
        if len(value) >= 4:
            text = text.replace(value, "********")
    return text


def failure_from_error(exc: CalflowError) -> ActionResult:
    """The failure result for an error raised while an action ran."""
    if isinstance(exc, RateLimitError):
        return ActionResult.fail("RATE_LIMIT", exc.message, {"retry_after": exc.retry_after})
    if isinstance(exc, RetryableError):
        return ActionResult.fail("UNAVAILABLE", exc.message, {"status": exc.status})
    if isinstance(exc, AuthError):
        return ActionResult.fail("AUTH_ERROR", exc.message, {"status": exc.status})
    if isinstance(exc, FatalProviderError):
        return ActionResult.fail(exc.code, exc.message, {"status": exc.status})
    return ActionResult.fail(exc.code, exc.message)


class Runner:
    """Runs actions and fetchers with shared HTTP connections and one integration store.

    ``raise_retryable`` lets a durable engine see ``RetryableError`` itself (to retry
    the step on its own schedule) instead of receiving a failure result.

    Booking changes that actions report go to ``sink``; by default (``publish=True``)
    that is calflow's event bus, so a booking made through an action triggers the same
    workflows as one made on the provider's own page.

    Before every call the integration's ``base_url`` / ``host`` are checked against
    ``allowance`` (by default the operator's ``CALFLOW_ALLOW_PRIVATE``), and an
    integration whose secrets were saved for another target is refused
    (:mod:`calflow.netpolicy`): a ``ConfigError``, nothing is sent.
    """

    def __init__(
        self,
        registry: Registry | None = None,
        store: IntegrationStore | None = None,
        http: httpx.AsyncClient | None = None,
        policy: RetryPolicy | None = None,
        sink: BookingSink | None = None,
        timeout_s: float = 30.0,
        integration_ttl_s: float = 2.0,
        publish: bool = True,
        allowance: Allowance | None = None,
    ) -> None:
        self.registry = registry or default_registry()
        self._store = store
        self._own_http = http is None
        self._http = http
        self._timeout_s = timeout_s
        self.policy = policy or RetryPolicy()
        self._sink = sink
        self._publish = publish
        self._ttl = integration_ttl_s
        self._cache: dict[str, tuple[float, Integration]] = {}
        self._allowance = allowance

    @property
    def allowance(self) -> Allowance:
        """The non-public targets this runner may call (the operator's, unless given)."""
        if self._allowance is None:
            self._allowance = operator_allowance()
        return self._allowance

    @property
    def store(self) -> IntegrationStore:
        if self._store is None:
            from calflow.integrations import IntegrationStore

            self._store = IntegrationStore.default()
        return self._store

    @property
    def sink(self) -> BookingSink | None:
        """Where reported booking changes go (the event bus unless told otherwise)."""
        if self._sink is None and self._publish:
            from calflow.events.intake import make_action_sink

            self._sink = make_action_sink(self.store)
        return self._sink

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = outbound_client(self.allowance, timeout_s=self._timeout_s)
        return self._http

    async def aclose(self) -> None:
        if self._http is not None and self._own_http:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> Runner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _integration(self, app: App, integration: str | Integration | None) -> Integration | None:
        if integration is None:
            if app.credential_fields and any(f.required for f in app.credential_fields):
                raise ConfigError(f"app {app.key!r} needs an integration (none was named)")
            return None
        found = self._lookup(integration) if isinstance(integration, str) else integration
        if found.app_key != app.key:
            raise ConfigError(
                f"integration {found.name!r} belongs to app {found.app_key!r}, not {app.key!r}"
            )
        return found

    def _lookup(self, name_or_id: str) -> Integration:
        """The named integration, from a short-lived cache (a store read costs ~1 ms).

        Entries live ``integration_ttl_s`` seconds, so a change made by another process
        is seen within that time; changes made through this runner are seen at once.
        """
        now = time.monotonic()
        hit = self._cache.get(name_or_id)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        found = self.store.get(name_or_id)
        self._cache[name_or_id] = (now, found)
        return found

    def forget(self, integration: Integration | None = None) -> None:
        """Drop cached integrations (all, or the entries of one)."""
        if integration is None:
            self._cache.clear()
            return
        for key in [k for k, (_, v) in self._cache.items() if v.id == integration.id]:
            del self._cache[key]

    def context(self, app: App, integration: str | Integration | None) -> ActionContext:
        """A context for ``app`` with the named integration (raises if it is unusable)."""
        found = self._integration(app, integration)
        if found is not None:
            values = {**dict(found.config), **{k: "set" for k in found.secrets}}
            try:
                app.check_credentials(values)
            except ValidationError as exc:  # the stored integration, not the input, is wrong
                raise ConfigError(f"integration {found.name!r}: {exc}") from exc
        return ActionContext(
            app=app,
            integration=found,
            http=self.http,
            policy=self.policy,
            sink=self.sink,
            saver=self._save,
            allowance=self.allowance,
        )

    async def guard(self, ctx: ActionContext) -> None:
        """Refuse a call whose integration targets what the operator does not allow, or
        whose secrets were saved for another target (``ConfigError``; nothing is sent)."""
        found = ctx.integration
        if found is None:
            return
        try:
            await check_fields(found.config, self.allowance)
        except ValidationError as exc:
            raise ConfigError(f"integration {found.name!r}: {exc.message}") from None
        bound = found.secrets_for
        if found.secrets and bound is not None and bound != binding(found.config):
            raise ConfigError(
                f"integration {found.name!r}: its secrets were saved for another "
                f"base_url or host ({bound}); they are not sent to "
                f"{binding(found.config)}: send the secrets again with the new target"
            )

    def _save(
        self,
        integration: Integration,
        config: Mapping[str, Any] | None,
        secrets: Mapping[str, str] | None,
        unset: Sequence[str] = (),
    ) -> Integration:
        self.forget(integration)
        return self.store.update(integration.id, config=config, secrets=secrets, unset=unset)

    async def run_action(
        self,
        app_key: str,
        action_key: str,
        data: Mapping[str, Any] | None,
        integration: str | Integration | None = None,
        *,
        raise_retryable: bool = False,
    ) -> ActionResult:
        """Validate ``data``, run the action, and return its result.

        Raises ``NotFoundError`` / ``ConfigError`` for an unknown app, action or integration
        or missing credentials, and ``ValidationError`` for invalid input; every provider
        outcome (including failures) comes back as an ``ActionResult``.
        """
        app = self.registry.app(app_key)
        action_cls = app.action(action_key)
        prepared = action_cls.input_schema().prepare(data if data is not None else {})
        ctx = self.context(app, integration)
        await self.guard(ctx)
        try:
            result = await action_cls().execute(prepared, ctx)
        except (ValidationError, ConfigError):
            raise
        except RetryableError as exc:
            if raise_retryable:
                raise
            result = failure_from_error(exc)
        except CalflowError as exc:
            result = failure_from_error(exc)
        except Exception as exc:  # an action bug must become a failure, not a traceback
            message = mask_secrets(f"{type(exc).__name__}: {exc}", ctx.integration)
            log.error(
                "action %s.%s crashed: %s\n%s",
                app.key,
                action_cls.key,
                message,
                "".join(traceback.format_tb(exc.__traceback__)),
            )
            result = ActionResult.fail("INTERNAL_ERROR", message)
        error_port = next((p.key for p in action_cls.ports if p.error), "error")
        if not result.success and result.port == "error" and action_cls.port("error") is None:
            result.port = error_port  # a failure on the default port goes to the action's own
        if action_cls.port(result.port) is None:
            log.error(
                "action %s.%s answered on undeclared port %r", app.key, action_cls.key, result.port
            )
            result = ActionResult.fail(
                "INTERNAL_ERROR",
                f"action answered on undeclared port {result.port!r}",
                port=error_port,
            )
        if ctx.changes:
            result.meta["booking_changes"] = len(ctx.changes)
        return result

    async def reconcile_action(
        self,
        app_key: str,
        action_key: str,
        data: Mapping[str, Any] | None,
        integration: str | Integration | None,
        since: datetime,
    ) -> ActionResult | None:
        """The result of an earlier, cut-off attempt of this call if the provider shows it
        took effect (see ``Action.reconcile``); None if it did not or cannot be told.
        Provider errors propagate: better to wait than to send twice."""
        app = self.registry.app(app_key)
        action_cls = app.action(action_key)
        prepared = action_cls.input_schema().prepare(data if data is not None else {})
        ctx = self.context(app, integration)
        await self.guard(ctx)
        return await action_cls().reconcile(prepared, ctx, since)

    async def fetch_options(
        self,
        app_key: str,
        fetcher_key: str,
        integration: str | Integration | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[Option]:
        """The options a fetcher offers; provider failures raise ``CalflowError``."""
        app = self.registry.app(app_key)
        fetcher_cls = app.fetcher(fetcher_key)
        if context is not None and not isinstance(context, Mapping):
            raise ValidationError(
                "context must be a JSON object",
                [FieldError("", f"expected an object, got {type(context).__name__}", "type")],
            )
        schema = fetcher_cls.context_schema()
        declared = schema.schema.get("properties", {})
        # a blank form field is no value; an undeclared key is refused even when blank
        ctx_values = {
            k: v for k, v in (context or {}).items() if k not in declared or v not in (None, "")
        }
        missing = [d for d in fetcher_cls.depends_on if ctx_values.get(d) in (None, "")]
        if missing:
            raise ValidationError(
                f"fetcher {fetcher_cls.key!r} needs {', '.join(missing)} in its context",
                [FieldError(d, "is required by this fetcher", "required") for d in missing],
            )
        try:
            ctx_values = schema.prepare(ctx_values)
        except ValidationError as exc:
            raise ValidationError(
                f"fetcher {fetcher_cls.key!r}: {exc.message}", exc.errors
            ) from None
        ctx = self.context(app, integration)
        await self.guard(ctx)
        try:
            return await fetcher_cls().fetch(ctx, ctx_values)
        except CalflowError:
            raise
        except (ValueError, TypeError, KeyError) as exc:  # a context value of the wrong form
            message = mask_secrets(f"{type(exc).__name__}: {exc}", ctx.integration)
            raise ValidationError(
                f"fetcher {fetcher_cls.key!r} could not use its context ({message})",
                [FieldError("context", message, "format")],
            ) from exc
        except Exception as exc:  # a fetcher bug must be an error, not a traceback
            message = mask_secrets(f"{type(exc).__name__}: {exc}", ctx.integration)
            log.error("fetcher %s.%s crashed: %s", app.key, fetcher_cls.key, message)
            raise InternalError(f"fetcher {fetcher_cls.key!r} failed: {message}") from exc


_default: Runner | None = None
_default_loop: asyncio.AbstractEventLoop | None = None


def _runner() -> Runner:
    global _default, _default_loop
    loop = asyncio.get_running_loop()
    if _default is None or _default_loop is not loop:
        _default = Runner()
        _default_loop = loop
    return _default


async def run_action(
    app: str,
    action: str,
    data: Mapping[str, Any] | None = None,
    integration: str | Integration | None = None,
) -> ActionResult:
    """Run one action with the default registry and integration store (see ``Runner``)."""
    return await _runner().run_action(app, action, data, integration)


async def fetch_options(
    app: str,
    fetcher: str,
    integration: str | Integration | None = None,
    context: Mapping[str, Any] | None = None,
) -> list[Option]:
    """The options of one fetcher with the default registry and integration store."""
    return await _runner().fetch_options(app, fetcher, integration, context)


def run_action_sync(
    app: str,
    action: str,
    data: Mapping[str, Any] | None = None,
    integration: str | Integration | None = None,
) -> ActionResult:
    """``run_action`` for code without an event loop."""

    async def _go() -> ActionResult:
        async with Runner() as runner:
            return await runner.run_action(app, action, data, integration)

    return asyncio.run(_go())


def fetch_options_sync(
    app: str,
    fetcher: str,
    integration: str | Integration | None = None,
    context: Mapping[str, Any] | None = None,
) -> list[Option]:
    """``fetch_options`` for code without an event loop."""

    async def _go() -> list[Option]:
        async with Runner() as runner:
            return await runner.fetch_options(app, fetcher, integration, context)

    return asyncio.run(_go())
