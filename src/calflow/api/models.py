"""Request and response bodies of the REST API (they are the published OpenAPI schema).

Inputs forbid unknown fields, so a misspelt field is a 422 naming it rather than a
silently ignored value. Outputs whose contents are open (event payloads, run steps)
allow extra fields, so the schema stays true as those documents grow.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    model_config = ConfigDict(extra="allow")


# ----------------------------------------------------------------- workspace, tokens


class WorkspaceOut(Output):
    id: str
    name: str
    settings: dict[str, Any]
    created_at: str


class TokenOut(Output):
    id: str
    name: str
    prefix: str = Field(description="The first characters of the token, to recognise it.")
    created_at: str
    last_used_at: str | None
    revoked: bool
    revoked_at: str | None


class TokenList(Output):
    items: list[TokenOut]


class TokenCreate(Input):
    name: str = Field("", max_length=200)


class TokenCreated(Output):
    token: TokenOut
    secret: str = Field(description="The token itself: shown once, never again.")


# ----------------------------------------------------------------- apps


class CredentialFieldOut(Output):
    key: str
    label: str
    secret: bool
    required: bool
    default: str | None
    description: str
    placeholder: str
    choices: list[str] = Field(
        default_factory=list,
        description="The only values the field takes (empty: any value of its kind).",
    )
    kind: str = Field(
        "text",
        description="What the value is, checked when it is set: text, url, phone (E.164), "
        "sender, time_zone (IANA), boolean, integer, port, number or country.",
    )


class PortOut(Output):
    key: str
    label: str
    description: str
    error: bool


class ActionOut(Output):
    key: str
    name: str
    description: str
    kind: str
    ports: list[PortOut]
    input_schema: dict[str, Any]


class FetcherOut(Output):
    key: str
    name: str
    description: str
    depends_on: list[str]


class AppOut(Output):
    key: str
    name: str
    description: str
    credential_fields: list[CredentialFieldOut]
    credential_schema: dict[str, Any] = Field(
        description="The credential fields as a JSON Schema (secret fields: writeOnly)."
    )
    auth_modes: list[dict[str, Any]]
    actions: list[ActionOut]
    fetchers: list[FetcherOut]
    receives_webhooks: bool


class AppList(Output):
    items: list[AppOut]


# ----------------------------------------------------------------- integrations


class IntegrationCreate(Input):
    app: str = Field(max_length=64)
    name: str = Field(min_length=1, max_length=200)
    config: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(
        default_factory=dict, description="Write-only: never returned by any endpoint."
    )
    values: dict[str, Any] = Field(
        default_factory=dict,
        description="Alternatively, every field in one object: split by the app's declaration.",
    )


class IntegrationUpdate(Input):
    config: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict, description="Write-only.")
    values: dict[str, Any] = Field(default_factory=dict)
    unset: list[str] = Field(default_factory=list, description="Fields to remove.")


class IntegrationOut(Output):
    id: str
    app: str
    name: str
    config: dict[str, Any]
    secrets: list[str] = Field(description="Names of the secret fields that are set.")
    webhook_url: str | None = Field(
        description="Where the provider must POST its webhooks (booking providers only)."
    )
    created_at: str
    updated_at: str
    cleared_secrets: list[str] = Field(
        default_factory=list,
        description="Secrets this update removed because base_url or host changed and they "
        "were not sent again (secrets are never sent to a host they were not given for).",
    )


class IntegrationList(Output):
    items: list[IntegrationOut]


class ConnectionTest(Output):
    ok: bool
    code: str | None
    message: str
    probe: str | None = Field(description="What was called to test the connection.")


class Deleted(Output):
    id: str
    deleted: bool = True


# ----------------------------------------------------------------- actions, fetchers


class ActionRun(Input):
    integration: str = Field(min_length=1, max_length=200, description="Integration id or name.")
    input: dict[str, Any] = Field(default_factory=dict)


class ResultError(Output):
    code: str | None
    message: str | None


class ActionRunOut(Output):
    port: str
    success: bool
    data: Any = None
    error: ResultError | None = Field(
        description="Why: set for failures and for answers such as conflict or not_found."
    )
    run_id: str
    duration_ms: float | None


class FetchRequest(Input):
    integration: str | None = Field(None, max_length=200, description="Integration id or name.")
    context: dict[str, Any] = Field(default_factory=dict)
    search: str | None = Field(
        None, max_length=200, description="Keep options whose label or value contains this."
    )


class OptionOut(Output):
    value: Any = None
    label: str


class FetchOut(Output):
    options: list[OptionOut]


# ----------------------------------------------------------------- workflows


class WorkflowOut(Output):
    id: str
    name: str
    version: int
    enabled: bool
    updated_at: str
    trigger: Any = None
    steps: list[str]
    definition: dict[str, Any]


class WorkflowSaved(WorkflowOut):
    result: str = Field(description="created, updated or unchanged.")
    warnings: list[dict[str, str]] = Field(
        default_factory=list,
        description="Problems that did not stop the save (with allow_missing_integrations: "
        "the integrations steps name that do not exist yet): field and message.",
    )


class WorkflowToggled(WorkflowOut):
    runs_waiting: int = Field(
        description="Runs it already started that are not finished: disabling stops new "
        "runs only, these keep waiting and run when due."
    )


class WorkflowDeleted(Deleted):
    name: str
    runs_cancelled: int = Field(
        description="Unfinished runs ended as cancelled with the reason 'workflow deleted'."
    )
    runs_kept: int = Field(description="Unfinished runs left to go on (keep_runs=true).")


class WorkflowList(Output):
    items: list[WorkflowOut]


class Validation(Output):
    valid: bool
    name: str | None
    errors: list[dict[str, str]] = Field(description="Each problem: field and message.")
    warnings: list[dict[str, str]] = Field(
        default_factory=list,
        description="Problems that would not stop a save (with allow_missing_integrations).",
    )


# ----------------------------------------------------------------- events, runs


class EventOut(Output):
    id: str
    provider: str
    kind: str
    booking_uid: str
    source: str
    integration_id: str | None
    received_at: str
    duplicates: int
    event: dict[str, Any]


class EventPage(Output):
    items: list[EventOut]
    next_cursor: str | None


class EventDetail(EventOut):
    raw: dict[str, Any]
    deliveries: list[dict[str, Any]]


class RunOut(Output):
    id: str
    workflow: str
    workflow_id: str
    status: str
    dead: bool
    booking_uid: str
    created_at: str


class RunPage(Output):
    items: list[RunOut]
    next_cursor: str | None


class RunDetail(RunOut):
    steps: list[dict[str, Any]]
    upcoming: list[dict[str, Any]]


class RetryOut(Output):
    run: str
    from_step: str
    attempt: int
    """The run's attempt: 2 for its first retry, 3 for the next…"""
    first_attempt: int
    """The number the failed step's next attempt gets (its attempts go on counting)."""


# ----------------------------------------------------------------- replays


class ReplayStart(Input):
    integration: str = Field(min_length=1, max_length=200, description="Integration id or name.")
    target: str = Field(
        min_length=1,
        max_length=2000,
        description="'calflow' (publish into this workspace's event bus) or a webhook URL.",
    )
    secret: str | None = Field(None, max_length=500, description="Signing secret (write-only).")
    since: str | None = Field(None, max_length=64)
    until: str | None = Field(None, max_length=64)
    kinds: list[str] = Field(default_factory=list)
    concurrency: int = Field(32, ge=1, le=512)  # replay.model.DEFAULT_CONCURRENCY
    rate: float | None = Field(None, gt=0, le=100_000)
    dry_run: bool = False
    allow_private: bool = False
    limit: int | None = Field(None, ge=1, le=10_000_000)
    timeout_s: float = Field(10.0, gt=0, le=300)
    max_attempts: int = Field(5, ge=1, le=20)
    run_workflows: bool = Field(
        False,
        description="With target 'calflow': let replayed changes start workflows as live "
        "ones do. Without it a change that happened more than 60 s before the replay "
        "starts none (an old cancellation sends no 'Cancelled' email today).",
    )
    signature: Literal["provider", "standard"] = Field(
        "provider",
        description="How deliveries to a URL are signed: 'provider' (the provider's own "
        "scheme) or 'standard' (Standard Webhooks; the secret is then whsec_<base64>).",
    )


class ReplayOut(Output):
    job: str
    status: str
    provider: str
    integration_id: str
    target: str
    options: dict[str, Any]
    running: bool = Field(description="Running in this server process right now.")
    totals: dict[str, int]
    progress: dict[str, Any] | None = Field(description="Live counts while running here.")
    counts: dict[str, Any] | None = Field(
        None,
        description="A dry run's counts (fetched, would_send, skipped with reasons); "
        "a dry run records no items, so its totals stay zero.",
    )
    error: str | None
    created_at: str
    finished_at: str | None


class ReplayList(Output):
    items: list[ReplayOut]
