"""Integrations of the caller's workspace: connections to apps, with write-only secrets.

- ``GET /api/v1/integrations`` (``?app=`` to keep one app's), ``POST`` to create:
  ``{"app", "name", "config": {…}, "secrets": {…}}`` or one ``values`` object that the
  app's declaration splits. Fields are always re-sorted by the app's declaration, so
  a secret field given under ``config`` is still stored encrypted and never shown.
- ``GET``/``PATCH``/``DELETE /api/v1/integrations/{id or name}``; PATCH merges
  ``config``/``secrets``/``values`` and removes the fields named in ``unset``.
- ``POST /api/v1/integrations/{id}/test``: a harmless call with the stored credentials
  (``ok``, or the provider's code and message; 200 either way).
Answers list the NAMES of the secret fields that are set, never a value, and, for a
booking provider, ``webhook_url``: the receiver ``POST /hooks/{integration id}``.
Settings are checked as they will be once saved (the app's ``fields_for_new`` /
``fields_for_update``): a value outside a field's ``choices`` (``webhook_signature``:
``provider`` | ``standard``) or a Standard Webhooks secret that does not decode is a 422
naming the field. A ``base_url`` or ``host`` that is not a public address is a 422
naming the field and ``CALFLOW_ALLOW_PRIVATE``, unless the operator allows it there
(:mod:`calflow.netpolicy`); the http app's ``allow_private`` is honoured only inside it.
A PATCH that changes ``base_url`` or ``host`` removes every stored secret it does not
send again, and says which in ``cleared_secrets``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query

from calflow.api.deps import ApiRoute, Scope, ScopeDep
from calflow.api.errors import ERROR_RESPONSES
from calflow.api.models import (
    ConnectionTest,
    Deleted,
    IntegrationCreate,
    IntegrationList,
    IntegrationOut,
    IntegrationUpdate,
)
from calflow.errors import CalflowError, FieldError, ValidationError
from calflow.flowapp.runner import failure_from_error
from calflow.integrations import Integration
from calflow.netpolicy import check_fields_sync, operator_allowance
from calflow.server.hooks import PROVIDERS

router = APIRouter(route_class=ApiRoute, responses=ERROR_RESPONSES, tags=["integrations"])

PROBES: dict[str, tuple[str, str]] = {
    "cal_com": ("fetcher", "event_types"),
    "savvycal": ("action", "GetMe"),
    "twilio": ("action", "GetAccount"),
    "email": ("action", "TestConnection"),
}
"""What ``/test`` calls per app: a read that needs valid credentials and changes nothing."""


def integration_out(found: Integration, scope: Scope) -> IntegrationOut:
    hook = f"{scope.base_url}/hooks/{found.id}" if found.app_key in PROVIDERS else None
    return IntegrationOut(
        id=found.id,
        app=found.app_key,
        name=found.name,
        config=dict(found.config),
        secrets=sorted(found.secrets),
        webhook_url=hook,
        created_at=found.created_at.isoformat(),
        updated_at=found.updated_at.isoformat(),
        cleared_secrets=list(found.cleared),
    )


def _given(
    config: Mapping[str, Any], secrets: Mapping[str, str], values: Mapping[str, Any]
) -> dict[str, Any]:
    """Every field given, in one mapping; 422 naming a field given twice."""
    doubled = sorted((set(config) & set(secrets)) | (set(values) & (set(config) | set(secrets))))
    if doubled:
        raise ValidationError(
            "a field is given twice",
            [FieldError(k, "given more than once (config, secrets, values)") for k in doubled],
        )
    return {**values, **config, **secrets}


@router.get("/integrations")
def list_integrations(
    scope: ScopeDep, app: Annotated[str | None, Query(max_length=64)] = None
) -> IntegrationList:
    """The workspace's integrations, by name."""
    return IntegrationList(
        items=[integration_out(i, scope) for i in scope.integrations.list(app or None)]
    )


@router.post("/integrations", status_code=201)
def create_integration(scope: ScopeDep, body: IntegrationCreate) -> IntegrationOut:
    """A new integration (409 if the name is taken in this workspace)."""
    app = scope.state.registry.app(body.app)
    config, secrets = app.fields_for_new(_given(body.config, body.secrets, body.values))
    check_fields_sync(config, operator_allowance(scope.state.settings))
    return integration_out(scope.integrations.add(app.key, body.name, config, secrets), scope)


@router.get("/integrations/{ref}")
def get_integration(scope: ScopeDep, ref: str) -> IntegrationOut:
    """One integration, by id or name."""
    return integration_out(scope.integrations.get(ref), scope)


@router.patch("/integrations/{ref}")
def update_integration(scope: ScopeDep, ref: str, body: IntegrationUpdate) -> IntegrationOut:
    """Merge fields into an integration; ``unset`` removes fields."""
    found = scope.integrations.get(ref)
    app = scope.state.registry.app(found.app_key)
    given = _given(body.config, body.secrets, body.values)
    config, secrets = app.fields_for_update(found.values(), given, body.unset)
    after = {k: v for k, v in {**found.config, **config}.items() if k not in body.unset}
    check_fields_sync(after, operator_allowance(scope.state.settings))
    updated = scope.integrations.update(found.id, config, secrets, body.unset)
    scope.runner.forget(updated)
    return integration_out(updated, scope)


@router.delete("/integrations/{ref}")
def delete_integration(scope: ScopeDep, ref: str) -> Deleted:
    """Delete an integration and its stored secrets."""
    found = scope.integrations.get(ref)
    scope.integrations.remove(found.id)
    scope.runner.forget(found)
    return Deleted(id=found.id)


@router.post("/integrations/{ref}/test")
async def test_integration(scope: ScopeDep, ref: str) -> ConnectionTest:
    """Check the stored credentials with a call that changes nothing."""
    found = await asyncio.to_thread(scope.integrations.get, ref)
    probe = PROBES.get(found.app_key)
    runner = scope.runner
    try:
        if probe is None:  # nothing to call: the fields are all that can be checked
            await runner.guard(runner.context(runner.registry.app(found.app_key), found))
            return ConnectionTest(ok=True, code=None, message="fields complete", probe=None)
        kind, key = probe
        if kind == "fetcher":
            await runner.fetch_options(found.app_key, key, found)
        else:
            result = await runner.run_action(found.app_key, key, {}, found)
            if not result.success:
                return ConnectionTest(
                    ok=False, code=result.code, message=result.message or "", probe=key
                )
    except CalflowError as exc:
        failed = failure_from_error(exc)
        return ConnectionTest(
            ok=False, code=failed.code, message=failed.message or "", probe=probe and probe[1]
        )
    return ConnectionTest(ok=True, code=None, message="connected", probe=key)
