"""Workflow definitions: YAML or JSON files, checked against ``workflow.schema.json``.

:func:`parse` returns a :class:`WorkflowDef` or raises a :class:`ValidationError`
listing every problem with its path: schema violations (the first wrong key named,
see :mod:`~calflow.workflows.schema_errors`), unknown event kinds, sources or
providers (with the nearest known one), unknown actions or ports, routes to missing
steps (or backwards: runs always move forward and end), and templates that do not
compile. With ``applying=True`` (a definition being applied, not one loaded from the
database) templates are also checked against the event model and time zone literals
against the zone database (:mod:`~calflow.workflows.template_check`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

from calflow.durations import seconds as seconds
from calflow.errors import FieldError, NotFoundError, ValidationError
from calflow.events.model import KINDS, SOURCES
from calflow.events.normalize.calcom import TRIGGER_KINDS
from calflow.events.normalize.savvycal import TYPE_KINDS
from calflow.flowapp.action import Action
from calflow.flowapp.model import SKIPPED_ROUTE as SKIPPED
from calflow.flowapp.registry import Registry, default_registry
from calflow.workflows import documents, template_check, templates
from calflow.workflows.schema_errors import schema_problems
from calflow.workflows.suggest import did_you_mean

END = "end"
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,79}")
_STEP_ID = re.compile(r"[a-z][a-z0-9_]{0,39}")


def registry_apps(registry: Registry) -> set[str]:
    return {app.key for app in registry.apps}


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The published JSON Schema of a workflow definition."""
    text = resources.files("calflow.workflows").joinpath("workflow.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schema())


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class Timing:
    """When a step runs: ``anchor`` (event, start, end, previous) plus ``offset`` seconds."""

    anchor: str = "event"
    offset: float = 0.0
    text: str = "immediately"

    @classmethod
    def parse(cls, raw: Any) -> Timing:
        if raw is None or raw == "immediately":
            return cls()
        ((key, value),) = dict(raw).items()
        amount = seconds(str(value))
        anchor, sign = {
            "before_start": ("start", -1),
            "after_start": ("start", 1),
            "before_end": ("end", -1),
            "after_end": ("end", 1),
            "after": ("previous", 1),
        }[key]
        return cls(anchor, sign * amount, f"{key}: {value}")

    @property
    def booking_relative(self) -> bool:
        return self.anchor in ("start", "end")


@dataclass(frozen=True)
class Retry:
    max_attempts: int = 3
    backoff: float = 10.0
    factor: float = 2.0
    max_backoff: float = 3600.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_backoff, self.backoff * self.factor ** (attempt - 1)))


@dataclass(frozen=True)
class StepDef:
    id: str
    app: str
    action: str
    integration: str | None
    input: Mapping[str, Any]
    at: Timing
    retry: Retry
    on: Mapping[str, str]
    skip_if_past: bool = True
    name: str = ""

    def after_skip(self, success_port: str | None) -> str | None:
        """Where the run goes when this step is skipped: its ``skipped`` route, else the
        route of the action's success port (``success_port``); None: the next step."""
        if SKIPPED in self.on:
            return self.on[SKIPPED]
        return self.on.get(success_port) if success_port else None


@dataclass(frozen=True)
class Trigger:
    kinds: tuple[str, ...]
    providers: tuple[str, ...] = ()
    integrations: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    attendee_has_phone: bool | None = None
    attendee_email: str | None = None
    when: str | None = None


@dataclass(frozen=True)
class WorkflowDef:
    name: str
    trigger: Trigger
    steps: tuple[StepDef, ...]
    description: str = ""
    enabled: bool = True
    source: Mapping[str, Any] = field(default_factory=dict)
    """The definition as written (what ``workflows show`` prints and the API returns)."""

    def step(self, step_id: str) -> StepDef:
        return next(s for s in self.steps if s.id == step_id)

    def index(self, step_id: str) -> int:
        return next(i for i, s in enumerate(self.steps) if s.id == step_id)


def load_text(text: str, where: str = "definition") -> Any:
    """A YAML or JSON document (JSON is YAML) within the document limits
    (:mod:`calflow.workflows.documents`); syntax errors name the line."""
    return documents.load_yaml(text, where)


Check = Callable[[Mapping[str, Any]], list[FieldError]]
"""A further check of a schema-valid document (the store's: the integrations exist)."""


def parse(
    raw: Any,
    registry: Registry | None = None,
    *,
    applying: bool = False,
    also: Check | None = None,
) -> WorkflowDef:
    """Check ``raw`` (a loaded document) completely and build the definition.

    ``applying``: also check templates against the event model and ``local()`` time
    zones. A definition loaded from the database skips these: it passed them when it
    was applied, and a stricter check in a later release must not stop it running.
    ``also``: more checks of the document, listed with the others (it must cope with
    parts that break the schema).

    Every problem is listed at once: a part the schema finds nothing wrong with (a
    trigger filter, the name, a step's id, action, integration, input and routes) gets
    the other checks even when another part fails the schema.
    """
    if not isinstance(raw, Mapping):
        raise ValidationError("a workflow definition is an object with name, trigger and steps")
    problems = schema_problems(_validator(), raw)
    broken = {p.path for p in problems}
    with template_check.trials():
        problems += _semantic_problems(raw, registry or default_registry(), applying, broken)
    problems += also(raw) if also is not None else []
    if problems:
        raise ValidationError(f"workflow {raw.get('name', '?')!r} is invalid", problems)
    return _build(raw)


def _build(raw: Mapping[str, Any]) -> WorkflowDef:
    t = raw["trigger"]
    trigger = Trigger(
        kinds=_strings(t["kinds"]),
        providers=_strings(t.get("providers")),
        integrations=_strings(t.get("integrations")),
        event_types=_strings(t.get("event_types")),
        sources=_strings(t.get("sources")),
        attendee_has_phone=t.get("attendee_has_phone"),
        attendee_email=t.get("attendee_email"),
        when=t.get("when"),
    )
    steps = []
    for s in raw["steps"]:
        app, _, action = str(s["action"]).partition(".")
        r = s.get("retry") or {}
        steps.append(
            StepDef(
                id=s["id"],
                name=s.get("name", ""),
                app=app,
                action=action,
                integration=s.get("integration"),
                input=dict(s.get("input") or {}),
                at=Timing.parse(s.get("at")),
                retry=Retry(
                    max_attempts=int(r.get("max_attempts", 3)),
                    backoff=seconds(r.get("backoff", "10s")),
                    factor=float(r.get("factor", 2)),
                    max_backoff=seconds(r.get("max_backoff", "1h")),
                ),
                on=dict(s.get("on") or {}),
                skip_if_past=bool(s.get("skip_if_past", True)),
            )
        )
    return WorkflowDef(
        name=raw["name"],
        description=raw.get("description", ""),
        enabled=bool(raw.get("enabled", True)),
        trigger=trigger,
        steps=tuple(steps),
        source=json.loads(json.dumps(raw, default=str)),
    )


def _items(trigger: Mapping[str, Any], key: str) -> list[tuple[str, str]]:
    """(path, value) of each string of a trigger filter: ``trigger.kinds.1``."""
    value = trigger.get(key)
    if isinstance(value, str):
        return [(f"trigger.{key}", value)]
    return [(f"trigger.{key}.{n}", v) for n, v in enumerate(value or [])]


_NATIVE_KINDS = {**TRIGGER_KINDS, **TYPE_KINDS}
"""Providers' own names of the kinds (``BOOKING_CREATED``, ``event.canceled``)."""


def _unknown(what: str, value: str, known: Any) -> str:
    """``unknown kind 'BOOKING_CREATED'; did you mean 'created'?``, or the known ones
    when none is close."""
    native = _NATIVE_KINDS.get(value) if what == "kind" else None
    hint = f"; did you mean {native!r}?" if native else did_you_mean(value, known)
    return f"unknown {what} {value!r}" + (hint or f" ({what}s: {', '.join(known)})")


def _trigger_problems(
    trigger: Mapping[str, Any], registry: Registry, applying: bool, clean: Callable[[str], bool]
) -> list[FieldError]:
    providers = sorted(registry_apps(registry))
    problems = [
        FieldError(path, _unknown(what, value, known), what)
        for key, what, known in (("kinds", "kind", KINDS), ("sources", "source", SOURCES),
                                 ("providers", "provider", providers))
        if clean(f"trigger.{key}")
        for path, value in _items(trigger, key)
        if value not in known
    ]  # fmt: skip
    if isinstance(trigger.get("when"), str) and trigger["when"] and clean("trigger.when"):
        try:
            templates.check_expression(trigger["when"])
        except templates.TemplateProblem as exc:
            problems.append(FieldError("trigger.when", str(exc), "template"))
        else:
            found = []
            if applying:
                found = template_check.expression_problems(trigger["when"])
                found += template_check.limit_problems(trigger["when"], expression=True)
            problems += [FieldError("trigger.when", m, "template") for m in found]
    return problems


def _semantic_problems(
    raw: Mapping[str, Any],
    registry: Registry,
    applying: bool,
    broken: set[str],
) -> list[FieldError]:
    """The checks beyond the schema, of each part without a schema problem (``broken``:
    the paths of those problems)."""

    def clean(part: str) -> bool:
        return not any(path == part or path.startswith(f"{part}.") for path in broken)

    trigger, name, steps = raw.get("trigger"), raw.get("name"), raw.get("steps")
    problems = []
    if isinstance(trigger, Mapping):
        problems += _trigger_problems(trigger, registry, applying, clean)
    if isinstance(name, str) and clean("name") and not _NAME.fullmatch(name):
        problems.append(FieldError("name", "must be one line of a-z, 0-9, _ . -", "pattern"))
    if not isinstance(steps, list):
        return problems
    ids = [
        s["id"] if isinstance(s, Mapping) and isinstance(s.get("id"), str) else "" for s in steps
    ]
    for i, step in enumerate(steps):
        where = f"steps.{i}"
        if where in broken or not all(
            clean(f"{where}.{key}") for key in ("id", "action", "integration", "input", "on")
        ):
            continue
        if not _STEP_ID.fullmatch(step["id"]):
            problems.append(FieldError(f"{where}.id", "must be one line of a-z, 0-9, _", "pattern"))
        if ids.count(step["id"]) > 1:
            problems.append(FieldError(f"{where}.id", f"duplicate step id {step['id']!r}", "id"))
        problems += _action_problems(step, where, registry)
        for port, target in (step.get("on") or {}).items():
            if target == END:
                continue
            if target not in ids:
                problems.append(FieldError(f"{where}.on.{port}", f"no step {target!r}", "route"))
            elif ids.index(target) <= i:
                problems.append(
                    FieldError(
                        f"{where}.on.{port}",
                        f"routes back to {target!r}: steps may only route forward",
                        "route",
                    )
                )
        problems += _template_problems(step, where, ids[:i], ids if applying else None)
    return problems


def _action_problems(step: Mapping[str, Any], where: str, registry: Registry) -> list[FieldError]:
    app, _, action_key = str(step["action"]).partition(".")
    try:
        action = registry.action(app, action_key)
    except NotFoundError as exc:
        return [FieldError(f"{where}.action", exc.message, "action")]
    ports = {p.key for p in action.ports}
    problems = [
        FieldError(
            f"{where}.on.{port}",
            f"{step['action']} has no port {port!r} (ports: {', '.join(sorted(ports))})",
            "port",
        )
        for port in (step.get("on") or {})
        if port not in ports and port != SKIPPED
    ]
    return problems + _skip_problems(step, where) + _input_keys(action, step, where)


def _skip_problems(step: Mapping[str, Any], where: str) -> list[FieldError]:
    """A ``skipped`` route on a step that is never skipped could never be taken: refused
    rather than ignored. A step that runs at once is never skipped; with ``skip_if_past:
    false`` only a step timed from the booking's start or end can be (in a reschedule's
    own run, once the booking moved again: see ``calflow.workflows.following``)."""
    if SKIPPED not in (step.get("on") or {}):
        return []
    at = step.get("at")
    if at in (None, "immediately"):
        reason = "the step runs at once (no `at`), so it is never skipped"
    elif step.get("skip_if_past") is False and isinstance(at, Mapping) and "after" in at:
        reason = (
            "skip_if_past is false and the step is timed after the previous one, "
            "so it is never skipped"
        )
    else:
        return []
    return [FieldError(f"{where}.on.{SKIPPED}", reason, "route")]


def _input_keys(action: type[Action], step: Mapping[str, Any], where: str) -> list[FieldError]:
    """Input keys the action does not declare (at any depth, a oneOf's variants minded),
    and required ones left out.

    Values may be templates, so only the keys are checked before the run.
    """
    data = step.get("input") or {}
    input_schema = action.input_schema()
    schema = input_schema.schema
    problems = [
        FieldError(f"{where}.input.{e.path}", f"{step['action']}: {e.message}", e.rule)
        for e in input_schema.undeclared(data)
    ]
    required = set(schema.get("required", []))
    if not schema.get("oneOf"):
        problems += [
            FieldError(f"{where}.input.{key}", f"{step['action']} needs {key!r}", "required")
            for key in sorted(required - set(data))
            if "default" not in schema.get("properties", {}).get(key, {})
        ]
    return problems


def _template_problems(
    step: Mapping[str, Any], where: str, earlier: list[str], steps: list[str] | None
) -> list[FieldError]:
    """Syntax, and the steps a template reads (``steps`` None) or, when applying (the
    workflow's step ids given), every name it reads and the time zones it names."""
    problems: list[FieldError] = []
    texts: list[tuple[str, str]] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, str) and templates.is_template(value):
            texts.append((path, value))
        elif isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, f"{path}.{k}")
        elif isinstance(value, list):
            for n, v in enumerate(value):
                walk(v, f"{path}.{n}")

    walk(step.get("input") or {}, f"{where}.input")
    if isinstance(step.get("integration"), str):
        walk(step["integration"], f"{where}.integration")
    for path, text in texts:
        try:
            templates.check(text)
        except templates.TemplateProblem as exc:
            problems.append(FieldError(path, str(exc), "template"))
            continue
        if steps is not None:
            found = template_check.template_problems(text, earlier, steps)
            found += template_check.limit_problems(text)
        else:
            later = sorted(templates.referenced_steps(text) - set(earlier))
            found = [f"reads steps.{ref}, which is not an earlier step" for ref in later]
        problems += [FieldError(path, message, "template") for message in found]
    return problems
