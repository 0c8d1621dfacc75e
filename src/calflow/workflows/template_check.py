"""Apply-time checks of templates against the context they will be rendered in.

A template is parsed (never rendered) and its variables are walked: each chain of
attributes and subscripts (``attendee.phone``, ``booking.event_type['slug']``,
``attendees[0].email``) is followed through the shape of
:func:`calflow.workflows.templates.context`, built here from a fully filled-in sample
event, so the check knows every field the context has and no other. The first wrong
name of a chain is reported with the nearest right one ("no field 'phone_number' on
attendee; did you mean 'phone'?").

What cannot be known before a run is accepted: anything under ``booking.metadata`` and
under ``steps.<id>`` for an earlier step (its output data), variables the template sets
itself (``{% set %}``, macro parameters; ``{% for a in attendees %}`` gives ``a`` an
attendee's fields). Time zone literals given to ``local()`` (``local("Europe/Paris")``,
``local(attendee.time_zone or "UTC")``) must be zones ``zoneinfo`` knows.

A template that breaks a render limit whatever the booking (``{{ 'x' * 10**9 }}``, two
nested ``range(10000)`` loops) is found by :func:`limit_problems`, which renders it once
on a sample booking; only a broken limit is reported from that render (anything else
depends on data the sample does not have). The trial renders of one document share
``TRIAL_CPU_S`` of CPU time (:func:`trials`); past that, the limits still hold when the
step runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.parser import Parser

from calflow.events.model import BookingEvent, EventType, Person
from calflow.workflows import templates
from calflow.workflows.suggest import did_you_mean, is_zone, zone

__all__ = ["expression_problems", "limit_problems", "template_problems", "trials"]

TRIAL_CPU_S = 2.0
_TRIALS_UNTIL: ContextVar[float | None] = ContextVar("calflow_template_trials", default=None)


@dataclass(frozen=True, eq=False)
class _Shape:
    """What a value in the context is: an object with ``fields``, a list of ``item``, a
    plain value of type ``value``, or (all unset) anything at all."""

    fields: Mapping[str, _Shape] | None = None
    item: _Shape | None = None
    value: type | None = None


_ANY = _Shape()
_STEPS = _Shape()  # told apart by identity: its keys are the workflow's step ids
_LOCALS = ("loop", "caller", "varargs", "kwargs")
_VALUE_NAMES = {str: "text", datetime: "a date-time", bool: "true or false"}


def _shape_of(value: Any) -> _Shape:
    if isinstance(value, Mapping):
        return _Shape(fields={k: _shape_of(v) for k, v in value.items()}) if value else _ANY
    if isinstance(value, list | tuple):
        return _Shape(item=_shape_of(value[0]) if value else _ANY)
    return _ANY if value is None else _Shape(value=type(value))


@lru_cache(maxsize=1)
def _roots() -> Mapping[str, _Shape]:
    """The context's top-level names, from a sample event with every field set."""
    at = datetime(2000, 1, 1, tzinfo=UTC)
    filled: dict[str, Any] = {name: "x" for name in Person.__dataclass_fields__}
    person = Person(**{**filled, "no_show": False})
    event = BookingEvent(
        provider="x", kind="created", booking_uid="x", source="webhook", occurred_at=at,
        received_at=at, original_type="x", previous_uid="x", start=at, end=at, status="x",
        title="x", event_type=EventType("x", "x", "x"), organizer=person, attendees=(person,),
        location="x", meeting_url="x", reason="x", integration_id="x",
    )  # fmt: skip
    roots = {name: _shape_of(value) for name, value in templates.context(event, {}, at).items()}
    roots["steps"] = _STEPS
    for name in templates.environment().globals:  # range, dict, namespace…
        roots.setdefault(name, _ANY)
    return roots


@lru_cache(maxsize=1)
def _sample() -> Mapping[str, Any]:
    """A booking as a provider sends it, for the trial renders."""
    at = datetime(2030, 1, 7, 9, tzinfo=UTC)
    person = Person(name="Ada Lovelace", email="ada@example.com", phone="+15005550006",
                    time_zone="Europe/London", language="en")  # fmt: skip
    event = BookingEvent(
        provider="cal_com", kind="created", booking_uid="uid-sample", source="webhook",
        occurred_at=at, received_at=at, original_type="BOOKING_CREATED", start=at,
        end=at.replace(hour=10), status="accepted", title="Intro call",
        event_type=EventType("1", "intro", "Intro call"), organizer=person,
        attendees=(person,), location="https://cal.com/video/x", integration_id="int_x",
    )  # fmt: skip
    return templates.context(event, {}, at)


@contextmanager
def trials() -> Iterator[None]:
    """The trial renders inside share ``TRIAL_CPU_S`` of this thread's CPU time."""
    token = _TRIALS_UNTIL.set(time.thread_time() + TRIAL_CPU_S)
    try:
        yield
    finally:
        _TRIALS_UNTIL.reset(token)


def limit_problems(text: str, *, expression: bool = False) -> list[str]:
    """The limit ``text`` breaks when rendered on a sample booking, if any."""
    until = _TRIALS_UNTIL.get()
    if until is not None and time.thread_time() > until:
        return []
    try:
        if expression:
            templates.evaluate(text, dict(_sample()), "")
        else:
            templates.render(text, dict(_sample()), "")
    except templates.TemplateLimit as exc:
        return [f"breaks a template limit: {str(exc).removeprefix(': ')}"]
    except Exception:  # data the sample does not have: known when the step runs
        return []
    return []


def template_problems(text: str, earlier: Sequence[str], steps: Sequence[str]) -> list[str]:
    """What is wrong with the names ``text`` reads, for a step after ``earlier`` in a
    workflow with ``steps`` (every step id); [] when the template does not compile."""
    try:
        tree = templates.environment().parse(text)
    except TemplateSyntaxError:
        return []
    return _Walker(tree, earlier, steps).problems


def expression_problems(text: str) -> list[str]:
    """The same for a trigger's ``when`` expression (no step has run yet)."""
    try:
        tree = Parser(templates.environment(), text, state="variable").parse_expression()
    except TemplateSyntaxError:
        return []
    return _Walker(tree, (), ()).problems


@dataclass
class _Walker:
    tree: nodes.Node
    earlier: Sequence[str]
    steps: Sequence[str]
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        bound = {n.name for n in self.tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
        scope = {**_roots(), **{name: _ANY for name in (*bound, *_LOCALS)}}
        self._visit(self.tree, scope)

    def _problem(self, message: str) -> _Shape:
        if message not in self.problems:
            self.problems.append(message)
        return _ANY

    def _visit(self, node: nodes.Node, scope: Mapping[str, _Shape]) -> None:
        if isinstance(node, nodes.Name | nodes.Getattr | nodes.Getitem):
            self._resolve(node, scope)
            return
        if isinstance(node, nodes.For):
            self._for(node, scope)
            return
        if isinstance(node, nodes.Filter) and node.name == "local":
            self._zones(node)
        for child in node.iter_child_nodes():
            self._visit(child, scope)

    def _for(self, node: nodes.For, scope: Mapping[str, _Shape]) -> None:
        iterated, _ = self._resolve(node.iter, scope)
        inner = dict(scope)
        if isinstance(node.target, nodes.Name):
            inner[node.target.name] = iterated.item or _ANY
        for child in [*node.body, *([node.test] if node.test else [])]:
            self._visit(child, inner)
        for child in node.else_:
            self._visit(child, scope)

    def _resolve(self, node: nodes.Node, scope: Mapping[str, _Shape]) -> tuple[_Shape, str]:
        """The shape of ``node`` and how to name it in a message (problems on the way)."""
        if isinstance(node, nodes.Name):
            if node.ctx != "load" or node.name in scope:
                return scope.get(node.name, _ANY), node.name
            known = sorted(k for k in _roots() if k not in templates.environment().globals)
            hint = did_you_mean(node.name, known)
            return self._problem(
                f"no variable {node.name!r}{hint} (variables: {', '.join(known)})"
            ), node.name
        if isinstance(node, nodes.Getattr):
            shape, label = self._resolve(node.node, scope)
            return self._field(shape, node.attr, label), f"{label}.{node.attr}"
        if isinstance(node, nodes.Getitem):
            shape, label = self._resolve(node.node, scope)
            key = node.arg.value if isinstance(node.arg, nodes.Const) else None
            if isinstance(key, str):
                return self._field(shape, key, label), f"{label}[{key!r}]"
            if isinstance(key, int) and not isinstance(key, bool):
                return (shape.item or _ANY) if shape is not _STEPS else _ANY, f"{label}[{key}]"
            self._visit(node.arg, scope)
            return _ANY, f"{label}[…]"
        self._visit(node, scope)
        return _ANY, "the value"

    def _field(self, shape: _Shape, name: str, label: str) -> _Shape:
        if shape is _STEPS:
            return self._step(name)
        if shape.fields is not None:
            if name in shape.fields:
                return shape.fields[name]
            if hasattr(dict, name):  # booking.get('title'), booking.items()
                return _ANY
            return self._problem(f"no field {name!r} on {label}{did_you_mean(name, shape.fields)}")
        if shape.item is not None and not hasattr(list, name):
            return self._problem(f"no field {name!r} on {label}: it is a list (e.g. {label}[0])")
        if shape.value is not None and not hasattr(shape.value, name):
            what = _VALUE_NAMES.get(shape.value, shape.value.__name__)
            return self._problem(f"no field {name!r} on {label} ({what})")
        return _ANY

    def _step(self, step_id: str) -> _Shape:
        if step_id in self.earlier:
            return _ANY
        if step_id in self.steps:
            return self._problem(f"reads steps.{step_id}, which is not an earlier step")
        where = "before this one" if self.steps else "yet: the trigger is checked before any step"
        return self._problem(f"no step {step_id!r} {where}{did_you_mean(step_id, self.earlier)}")

    def _zones(self, node: nodes.Filter) -> None:
        given = node.args[0] if node.args else None
        given = next((k.value for k in node.kwargs if k.key == "tz"), given)
        for literal in _literals(given):
            if isinstance(literal, str) and literal and not is_zone(literal):
                found = zone(literal)
                hint = f"; did you mean {found!r}?" if found else " (an IANA name: Europe/Paris)"
                self._problem(f"unknown time zone {literal!r}{hint}")


def _literals(node: nodes.Node | None) -> list[Any]:
    """The constants an argument may evaluate to: ``x or "UTC"`` → ``["UTC"]``."""
    if isinstance(node, nodes.Const):
        return [node.value]
    if isinstance(node, nodes.Or | nodes.And):
        return _literals(node.left) + _literals(node.right)
    if isinstance(node, nodes.CondExpr):
        return _literals(node.expr1) + _literals(node.expr2)
    return []
