"""``POST /hooks/{integration_id}``: the webhook receiver.

Order of work, so that nothing bad is stored and nothing good is lost:
1. a body over the size limit is refused (413) before it is read, from its
   ``Content-Length`` or, without one, as soon as the stream passes the limit;
2. the integration must exist and be a provider integration (404), the body must be
   declared JSON if it is declared at all (415), and a webhook secret must be set;
3. the signature is checked on the raw bytes in constant time (401 stores nothing
   but a rate-limited audit line without the body: ``calflow.server.audit``);
4. the body is parsed (400) and normalized (422 when it is no delivery of this
   provider; an unknown trigger is kept as ``other``);
5. the event is stored durably through the inbox, and only then answered 200.
No provider call and no workflow work happens on this path.

What a signed body may hold is checked before it is normalized, so that nothing stored
can later break a list, a show, a delivery or a run (``calflow.server.bodies``):
- at most ``CALFLOW_WEBHOOK_MAX_BYTES`` (1 MiB by default; 413), UTF-8 JSON (400);
- ``NaN`` / ``Infinity`` literals are not JSON (400); a float overflowing to infinity
  (``1e400``) and an integer of more than 64 digits are refused (422);
- at most 32 levels of arrays/objects (422 ``TOO_DEEP``);
- strings and keys of at most 65,536 characters, without NUL (``\\u0000``) and without
  lone surrogates (``\\ud800``) (422 ``UNSUPPORTED_VALUE``);
each refusal names the problem and its place (``details[0].field``, a dotted path such as
``payload.attendees[0].name``); nothing is stripped, so what is stored is what was signed.
A date outside the years 1000-9999 (``startTime``, ``createdAt``, ``occurred_at``…) is
read as absent by the normalizers (``occurred_at`` then falls back to receipt).

Bad addresses: a hook URL carries only an integration id (``/hooks/<provider>/<id>`` is
404 saying so); an id that is unknown, deleted (even a moment ago: the write checks the
integration still exists) or of an app that takes no webhooks is 404; a body of the other
provider (a SavvyCal delivery posted to a Cal.com integration's URL, or the reverse) is
422 ``WRONG_PROVIDER``. None of these stores anything.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from calflow.db.models import IntegrationRow
from calflow.errors import NotFoundError, ValidationError
from calflow.events.inbox import Inbox
from calflow.events.normalize import normalize
from calflow.integrations import Integration, IntegrationStore
from calflow.logs import fields
from calflow.metrics import DELIVERIES
from calflow.server.access import note_workspace
from calflow.server.audit import AuditLine
from calflow.server.bodies import BodyError, parse_body
from calflow.server.commit import GroupCommit, IntegrationGone
from calflow.server.signatures import BAD_SIGNATURE, StandardSecretError, refusal

log = logging.getLogger("calflow.hooks")
PROVIDERS = ("cal_com", "savvycal")
CACHE_TTL_S = 2.0
RECHECK_S = 0.5
PARSE_INLINE_BYTES = 64 * 1024
"""Bodies up to this size are parsed on the event loop; larger ones in a thread."""
_ID = re.compile(r"[A-Za-z0-9_.:-]{1,40}")
"""What an integration id can look like (``int_`` + hex; the column holds 40)."""
_PROVIDER_KEY = "calflow.provider"
_OUTCOME_KEY = "calflow.delivery"
"""Where a delivery's provider and outcome are left in the ASGI scope for its count
(``calflow_webhook_deliveries_total``)."""


def error(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    """calflow's one error shape (``details`` names the place in the body, when known)."""
    problem: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        problem["details"] = [{"field": field, "message": message}]
    return JSONResponse({"error": problem}, status_code=status)


class _TooLarge(Exception):
    pass


async def read_limited(request: Request, limit: int) -> bytes:
    """The raw body, or ``_TooLarge`` as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class Receiver:
    """The receiver's state: the store, the inbox, and a short integration cache."""

    def __init__(self, store: IntegrationStore, max_bytes: int) -> None:
        self.store = store
        self.inbox = Inbox(store.engine, store.workspace_id)
        self.commit = GroupCommit(self.inbox)
        self._commits: dict[str, GroupCommit] = {}
        self.max_bytes = max_bytes
        self._cache: dict[str, tuple[float, Integration | None]] = {}
        self.audit = AuditLine()
        self._rechecked: dict[str, float] = {}

    def integration(self, integration_id: str, fresh: bool = False) -> Integration | None:
        """The integration behind a hook URL. Only usable ones are cached (for 2 s), and a
        caller that is about to refuse a delivery asks again with ``fresh``: a webhook
        registered or re-keyed a moment ago is never refused from a stale cache."""
        now = time.monotonic()
        hit = self._cache.get(integration_id)
        if not fresh and hit is not None and now - hit[0] < CACHE_TTL_S:
            return hit[1]
        found = self._load(integration_id)
        if found is not None and found.value("webhook_secret"):
            self._cache[integration_id] = (now, found)
        else:
            self._cache.pop(integration_id, None)
        return found

    def _load(self, integration_id: str) -> Integration | None:
        """The integration with this id, in whichever workspace holds it (ids are unique;
        hook URLs carry ids, never names)."""
        with self.store.engine.connect() as conn:
            workspace_id = conn.execute(
                select(IntegrationRow.workspace_id).where(IntegrationRow.id == integration_id)
            ).scalar()
        if workspace_id is None:
            return None
        store = self.store
        if workspace_id != store.workspace_id:
            store = IntegrationStore(store.engine, store.vault, str(workspace_id))
        try:
            found = store.get(integration_id)
        except NotFoundError:
            return None
        return found if found.id == integration_id else None

    def _commit_for(self, workspace_id: str) -> GroupCommit:
        """The group commit of a workspace's inbox: each event is stored in the workspace
        of the integration it came through."""
        if workspace_id == self.inbox.workspace_id:
            return self.commit
        commit = self._commits.get(workspace_id)
        if commit is None:
            commit = GroupCommit(Inbox(self.store.engine, workspace_id))
            self._commits[workspace_id] = commit
        return commit

    async def receive(self, integration_id: str, request: Request) -> JSONResponse:
        try:
            body = await read_limited(request, self.max_bytes)
        except _TooLarge:
            return error(413, "TOO_LARGE", f"webhook bodies are limited to {self.max_bytes} bytes")
        if not _ID.fullmatch(integration_id):  # no database read for what no id looks like
            return _no_endpoint(integration_id)
        found = self._cached(integration_id)
        if found is None:
            found = await asyncio.to_thread(self.integration, integration_id)
        if found is None:
            return _no_endpoint(integration_id)
        note_workspace(request.scope, found.workspace_id)
        request.scope[_PROVIDER_KEY] = found.app_key
        if found.app_key not in PROVIDERS:
            return error(
                404,
                "NOT_FOUND",
                f"integration {integration_id} is a {found.app_key} integration, which receives "
                f"no booking webhooks (only {', '.join(PROVIDERS)} integrations do)",
            )
        if not _json_media_type(request.headers.get("content-type")):
            return error(
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                f"webhook bodies must be JSON (Content-Type: application/json), "
                f"not {request.headers.get('content-type')!r}",
            )
        secret = found.value("webhook_secret")
        if not secret:
            self._refused(found.id, "NO_SECRET", request, body)
            return error(
                401,
                "NO_SECRET",
                f"integration {found.name!r} has no webhook secret; register the webhook with "
                "`calflow webhooks register` so deliveries can be verified",
            )
        headers = {k.lower(): v for k, v in request.headers.items()}
        refused = self._refusal(found, body, headers)
        if refused is not None:
            fresher = await self._recheck(integration_id)
            if fresher is not None:
                refused = self._refusal(fresher, body, headers)
            if refused is not None:
                self._refused(found.id, refused[0], request, body)
                return error(401, *refused)
        try:
            if len(body) <= PARSE_INLINE_BYTES:
                parsed: Any = parse_body(body)
            else:  # a large body costs milliseconds: not on the loop that serves the others
                parsed = await asyncio.to_thread(parse_body, body)
        except BodyError as exc:
            return error(exc.status, exc.code, exc.message, exc.path)
        other = _other_provider(found.app_key, parsed)
        if other is not None:
            return error(
                422,
                "WRONG_PROVIDER",
                f"this is a {other} delivery, posted to the hook URL of a {found.app_key} "
                f"integration; give {other} the hook URL of a {other} integration",
            )
        try:
            event = normalize(found.app_key, parsed, source="webhook", integration_id=found.id)
        except ValidationError as exc:
            return error(422, "NOT_A_DELIVERY", exc.message)
        reference = headers.get("webhook-id") or _envelope_id(parsed)
        try:
            published = await self._commit_for(found.workspace_id).publish(event, reference)
        except IntegrationGone:
            self._cache.pop(found.id, None)
            return error(404, "NOT_FOUND", f"integration {found.id} was deleted")
        except Exception as exc:  # the sender retries a 503; a 500 would look like our bug
            log.error("could not store a delivery for %s: %s", found.id, exc)
            return error(503, "UNAVAILABLE", "the event could not be stored; retry later")
        outcome = "duplicate" if published.duplicate else "stale" if published.stale else "stored"
        request.scope[_OUTCOME_KEY] = outcome
        log.info(
            "delivery %s: %s %s", outcome, found.app_key, event.kind,
            extra=fields(integration=found.id, provider=found.app_key, kind=event.kind,
                         event=published.event_id, outcome=outcome),
        )  # fmt: skip
        return JSONResponse(
            {
                "ok": True,
                "event": published.event_id,
                "duplicate": published.duplicate,
                "stale": published.stale,
            }
        )

    def _cached(self, integration_id: str) -> Integration | None:
        hit = self._cache.get(integration_id)
        if hit is not None and time.monotonic() - hit[0] < CACHE_TTL_S:
            return hit[1]
        return None

    async def _recheck(self, integration_id: str) -> Integration | None:
        """The integration read again (a secret may have just changed), at most twice a
        second per integration so forged deliveries cannot turn into database reads."""
        now = time.monotonic()
        if now - self._rechecked.get(integration_id, 0.0) < RECHECK_S:
            return None
        self._rechecked[integration_id] = now
        return await asyncio.to_thread(self.integration, integration_id, True)

    @staticmethod
    def _refusal(
        found: Integration, body: bytes, headers: dict[str, str]
    ) -> tuple[str, str] | None:
        """``(code, reason)`` when the delivery's signature does not verify, else None."""
        secret = found.value("webhook_secret")
        if not secret:
            return "BAD_SIGNATURE", BAD_SIGNATURE
        scheme = found.value("webhook_signature")
        try:
            reason = refusal(found.app_key, scheme, str(secret), body, headers)
        except StandardSecretError as exc:  # the stored secret is unusable: ours to fix
            return "BAD_SECRET", (
                f"integration {found.name!r} cannot verify deliveries: {exc.message}; fix it "
                "with `calflow integrations update`"
            )
        return None if reason is None else ("BAD_SIGNATURE", reason)

    def _refused(self, integration_id: str, code: str, request: Request, body: bytes) -> None:
        remote = request.client.host if request.client else "?"
        self.audit.refused(integration_id, code, remote, len(body), list(request.headers.keys()))


def _json_media_type(value: str | None) -> bool:
    """A JSON media type, or none at all (the body then has to parse as JSON)."""
    if value is None or not value.strip():
        return True
    media = value.split(";", 1)[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind in ("application", "text") and (subtype == "json" or subtype.endswith("+json"))


def _no_endpoint(integration_id: str) -> JSONResponse:
    shown = integration_id if len(integration_id) <= 64 else integration_id[:64] + "…"
    return error(
        404,
        "NOT_FOUND",
        f"no webhook endpoint for {shown!r}: no such integration (unknown or deleted)",
    )


def _other_provider(provider: str, body: Any) -> str | None:
    """The other provider whose delivery ``body`` plainly is, if it is not ``provider``'s.

    Cal.com deliveries carry ``triggerEvent``, which SavvyCal's never do; SavvyCal's carry
    a dotted ``type`` (``event.created``) and a ``payload`` object, and no ``triggerEvent``.
    """
    if not isinstance(body, dict):
        return None
    if provider == "savvycal" and "triggerEvent" in body:
        return "cal_com"
    kind = body.get("type")
    looks_savvycal = isinstance(kind, str) and "." in kind and isinstance(body.get("payload"), dict)
    if provider == "cal_com" and "triggerEvent" not in body and looks_savvycal:
        return "savvycal"
    return None


def _envelope_id(body: Any) -> str | None:
    value = body.get("id") if isinstance(body, dict) else None
    return str(value) if isinstance(value, str) else None


def hooks_route(receiver: Receiver) -> Route:
    """``POST /hooks/{integration_id}`` as a plain Starlette route (no FastAPI
    dependency machinery on the hottest path; it is not part of the REST API schema)."""

    async def hook(request: Request) -> Response:
        response = await receiver.receive(request.path_params["integration_id"], request)
        scope = request.scope
        outcome = scope.get(_OUTCOME_KEY) or f"http_{response.status_code}"
        DELIVERIES.labels(scope.get(_PROVIDER_KEY) or "unknown", outcome).inc()
        return response

    return Route("/hooks/{integration_id}", hook, methods=["POST"], name="webhook")


def misaddressed_route() -> Route:
    """``POST /hooks/{provider}/{rest}``: a 404 that says what a hook URL looks like (a
    provider type, known or not, is no part of it)."""

    async def hook(request: Request) -> Response:
        provider = str(request.path_params["provider"])[:64]
        what = "" if provider in PROVIDERS else f"; {provider!r} is no provider calflow knows"
        return error(
            404,
            "NOT_FOUND",
            f"hook URLs are /hooks/<integration id>, without a provider type{what} "
            f"(known: {', '.join(PROVIDERS)})",
        )

    return Route("/hooks/{provider}/{rest:path}", hook, methods=["POST"], name="misaddressed")
