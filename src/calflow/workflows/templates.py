"""Step input templates: a sandboxed Jinja2 environment over a booking event.

The context a template sees:

- ``event``: kind, provider, source, original_type, occurred_at, received_at, integration_id
- ``booking``: uid, previous_uid, title, status, start, end (aware UTC datetimes), location,
  meeting_url, reason, event_type {id, slug, title}, metadata
- ``attendee`` (the first attendee), ``attendees``, ``organizer``: name, first_name,
  last_name, email, phone (E.164), time_zone, language
- ``steps``: earlier steps of the run by id: ``steps.sms.port``, ``steps.sms.data.sid``
- ``now``: the time the step runs

Filters: ``local(tz, fmt)`` formats a datetime in a time zone (``{{ booking.start |
local(attendee.time_zone, "%a %d %b %H:%M") }}``; DST-correct), ``iso`` and
``duration`` (minutes between two datetimes: ``booking | duration``).

Every render keeps the limits of :mod:`calflow.workflows.template_limits` (a render
that breaks one raises :class:`TemplateLimit`, a :class:`TemplateProblem` naming the
field and the limit); Jinja's ``lipsum`` is not offered (it loops in Python for as long
as it is asked to).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, nodes
from jinja2.environment import TemplateExpression
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from calflow.events.model import BookingEvent, Person
from calflow.workflows import template_limits as limits
from calflow.workflows.template_limits import TemplateLimit as TemplateLimit
from calflow.workflows.template_limits import TemplateProblem as TemplateProblem

DEFAULT_FORMAT = "%a %d %b %Y %H:%M %Z"
_T = TypeVar("_T")


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise TemplateProblem(f"expected a date-time, got {type(value).__name__}")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _local(value: Any, tz: str | None = None, fmt: str = DEFAULT_FORMAT) -> str:
    if value is None:
        return ""
    try:
        zone = ZoneInfo(tz) if tz else UTC
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TemplateProblem(f"unknown time zone {tz!r}") from exc
    return _aware(value).astimezone(zone).strftime(fmt)


def _iso(value: Any) -> str:
    if value is None:
        return ""
    return _aware(value).astimezone(UTC).isoformat().replace("+00:00", "Z")


def _duration(booking: Mapping[str, Any]) -> int:
    start, end = booking.get("start"), booking.get("end")
    if start is None or end is None:
        return 0
    return int((_aware(end) - _aware(start)).total_seconds() // 60)


class _Environment(ImmutableSandboxedEnvironment):
    """Keys before attributes: ``steps.get`` is the step named get, not ``dict.get``;
    operators, calls and compiled trees go through the template limits' checks."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        limits.check_binop(operator, left, right)
        return limits.checked(self.binop_table[operator](left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        args = limits.check_call(__obj, args, kwargs)
        return limits.checked(super().call(__context, __obj, *args, **kwargs))

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,
    ) -> str:
        return super()._generate(limits.instrument(source), name, filename, defer_init)


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    """The one sandboxed environment: no attribute tricks, undefined names are errors,
    every render within the template limits."""
    env = _Environment(undefined=StrictUndefined, autoescape=False)
    env.filters["local"] = _local
    env.filters["iso"] = _iso
    env.filters["duration"] = _duration
    env.filters = limits.checked_filters(env.filters)
    env.globals.pop("lipsum", None)
    env.globals["range"] = limits.checked_range
    return env


@lru_cache(maxsize=2048)
def _template(text: str) -> Template:
    """``text`` compiled once per process (compiling costs far more than rendering)."""
    return environment().from_string(text)


@lru_cache(maxsize=512)
def _expression(text: str) -> TemplateExpression:
    return environment().compile_expression(text, undefined_to_none=False)


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


_LOOPING = (nodes.For, nodes.Macro, nodes.CallBlock, nodes.Call, nodes.FilterBlock)


@lru_cache(maxsize=2048)
def _loops(text: str) -> bool:
    try:
        return any(True for _ in environment().parse(text).find_all(_LOOPING))
    except TemplateSyntaxError:
        return False


def loops(value: Any) -> bool:
    """Whether a template in ``value`` has loops, macros or calls: its render may take
    up to the limits' CPU time, so the engine renders it off its event loop; the others
    (fields and filters) take microseconds and render in place."""
    if isinstance(value, str):
        return is_template(value) and _loops(value)
    if isinstance(value, Mapping):
        return any(loops(v) for v in value.values())
    if isinstance(value, list):
        return any(loops(v) for v in value)
    return False


def check(text: str) -> None:
    """Compile ``text``; a syntax error becomes a :class:`TemplateProblem`."""
    try:
        environment().from_string(text)  # compiling also finds unknown filters and tests
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax: {exc.message} (line {exc.lineno})") from exc


def check_expression(text: str) -> None:
    try:
        environment().compile_expression(text)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"expression syntax: {exc.message}") from exc


def referenced_steps(text: str) -> set[str]:
    """Step ids a template reads through ``steps.<id>``."""
    found: set[str] = set()
    for node in environment().parse(text).find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "steps":
            found.add(node.attr)
    return found


def render(value: Any, context: Mapping[str, Any], where: str = "input") -> Any:
    """``value`` with every template string rendered (dicts and lists walked), each
    within the template limits and all of them within ``MAX_INPUT`` characters."""
    used = [0]
    out = _render(value, context, where, used)
    if used[0] > limits.MAX_INPUT:
        raise TemplateLimit(f"{where}: more than {limits.MAX_INPUT:,} characters rendered")
    return out


def _render(value: Any, context: Mapping[str, Any], where: str, used: list[int]) -> Any:
    if isinstance(value, str):
        if not is_template(value):
            return value
        text = _guarded(where, lambda: _render_text(value, context))
        used[0] += len(text)
        return text
    if isinstance(value, Mapping):
        return {k: _render(v, context, f"{where}.{k}", used) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, context, f"{where}[{i}]", used) for i, v in enumerate(value)]
    return value


def _render_text(text: str, context: Mapping[str, Any]) -> str:
    template = _template(text)  # compiled outside the budget
    with limits.budget():
        return limits.output_limit(template.generate(context))


def evaluate(expression: str, context: Mapping[str, Any], where: str = "when") -> bool:
    """A Jinja expression's truth value, within the template limits."""

    def run() -> bool:
        compiled = _expression(expression)
        with limits.budget():
            return bool(compiled(**context))

    return _guarded(where, run)


def _guarded(where: str, run: Callable[[], _T]) -> _T:
    """``run()``, its errors as :class:`TemplateProblem` (or :class:`TemplateLimit`)
    whose message starts with ``where``."""
    try:
        return run()
    except TemplateLimit as exc:
        raise TemplateLimit(f"{where}: {exc}") from None
    except TemplateProblem as exc:
        raise TemplateProblem(f"{where}: {exc}") from exc
    except RecursionError:
        raise TemplateLimit(f"{where}: calls nested too deeply") from None
    except TemplateError as exc:
        raise TemplateProblem(f"{where}: {exc.message or exc}") from exc
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise TemplateProblem(f"{where}: {exc}") from exc


def _person(p: Person | None) -> dict[str, Any]:
    if p is None:
        return {k: None for k in Person.__dataclass_fields__}
    out = p.to_dict()
    if not out.get("first_name") and p.name:
        out["first_name"] = p.name.split()[0]
    if not out.get("last_name") and p.name and len(p.name.split()) > 1:
        out["last_name"] = p.name.split(None, 1)[1]
    return out


def context(
    event: BookingEvent,
    steps: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The template context of ``event`` (see the module docstring)."""
    attendees = [_person(a) for a in event.attendees]
    return {
        "event": {
            "kind": event.kind,
            "provider": event.provider,
            "source": event.source,
            "original_type": event.original_type,
            "occurred_at": event.occurred_at,
            "received_at": event.received_at,
            "integration_id": event.integration_id,
        },
        "booking": {
            "uid": event.booking_uid,
            "previous_uid": event.previous_uid,
            "title": event.title,
            "status": event.status,
            "start": event.start,
            "end": event.end,
            "location": event.location,
            "meeting_url": event.meeting_url,
            "reason": event.reason,
            "event_type": event.event_type.to_dict() if event.event_type else {},
            "metadata": dict(event.metadata),
        },
        "attendee": attendees[0] if attendees else _person(None),
        "attendees": attendees,
        "organizer": _person(event.organizer),
        "steps": dict(steps or {}),
        "now": now or datetime.now(UTC),
    }
