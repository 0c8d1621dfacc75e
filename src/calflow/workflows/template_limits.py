"""The limits every template render keeps, and the hooks that enforce them.

A template is tenant input that runs on calflow's threads, so each render has a budget
(:class:`Budget`, one per rendered field or ``when`` expression):

- ``MAX_VALUE`` characters (or items) in any value a template builds: ``'x' * n``,
  ``s ~ s``, ``s|replace(…)``, ``items|join``, ``'%9999999d' % 1``, ``'{:>9999999}'
  .format(…)``, ``s.center(n)``; a number of at most ``MAX_INT_BITS`` bits (``10 ** n``);
- ``MAX_WORK`` steps: loop iterations, calls, filters, operators and outputs together
  (two nested ``range(10000)`` loops stop after the first ``MAX_WORK``);
- ``MAX_PRODUCED`` characters produced in all (outputs, buffered ``{% set %}`` blocks
  and macro bodies included);
- ``MAX_OUTPUT`` characters of output per field, ``MAX_INPUT`` per step input;
- ``MAX_CPU_S`` seconds of the rendering thread's CPU time, as a last resort.

The checks are cooperative and that is why they hold: Jinja compiles a template to
Python, and :func:`instrument` rewrites the template's tree before it is compiled so
that every loop iterates through :func:`iterate`, every output and ``~`` goes through
:func:`produced`, and the sandbox's operator and call hooks (``call_binop``,
``call``) and every filter check their operands *before* an operation that could build
a huge value in one C call, then count what came out. No operation between two checks
can run long: each one is bounded by the size limits. A deadline enforced from outside
cannot do this: a render in a thread cannot be interrupted, and a render in a child
process costs a process hop per field (see DESIGN.md, "Bounded templates").

Jinja folds constant expressions while it compiles, which is where ``{{ 'x' *
4*10**8 }}`` used to build its 400 MB: intercepted operators are never folded, and the
hooks refuse to run outside a render, so nothing a template asks for is computed at
compile time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps
from typing import Any

from jinja2 import nodes, pass_context
from jinja2.runtime import Context

MAX_VALUE = 100_000
MAX_INT_BITS = 10_000
MAX_WORK = 100_000
MAX_PRODUCED = 1_000_000
MAX_OUTPUT = 65_536
MAX_INPUT = 262_144
MAX_CPU_S = 0.5
_CLOCK_EVERY = 32

ITERATE = "_calflow_iterate"
PRODUCED = "_calflow_produced"


class TemplateProblem(Exception):
    """A template that does not compile or cannot be rendered; the message says why."""


class TemplateLimit(TemplateProblem):
    """A render that went over one of the limits; the message names it and its value."""


class _NotRendering(Exception):
    """A hook ran outside a render: Jinja folding a constant while it compiles."""


@dataclass
class Budget:
    """What one render has used so far."""

    work: int = 0
    produced: int = 0
    cpu_deadline: float = 0.0

    def step(self, units: int = 1) -> None:
        self.work += units
        if self.work > MAX_WORK:
            raise TemplateLimit(f"more than {MAX_WORK:,} steps (loop iterations, calls, outputs)")
        if self.work % _CLOCK_EVERY < units and time.thread_time() > self.cpu_deadline:
            raise TemplateLimit(f"more than {MAX_CPU_S} s of CPU time")

    def produce(self, size: int) -> None:
        self.produced += size
        if self.produced > MAX_PRODUCED:
            raise TemplateLimit(f"more than {MAX_PRODUCED:,} characters produced in all")


_BUDGET: ContextVar[Budget | None] = ContextVar("calflow_template_budget", default=None)


@contextmanager
def budget() -> Iterator[Budget]:
    """A fresh budget for the render run inside this context."""
    spent = Budget(cpu_deadline=time.thread_time() + MAX_CPU_S)
    token = _BUDGET.set(spent)
    try:
        yield spent
    finally:
        _BUDGET.reset(token)


def _current() -> Budget:
    spent = _BUDGET.get()
    if spent is None:
        raise _NotRendering
    return spent


def _too_long(
    size: int, what: str = "a value of", unit: str = " characters or items"
) -> TemplateLimit:
    return TemplateLimit(f"{what} {size:,}{unit} (at most {MAX_VALUE:,})")


def text_bound(value: Any, limit: int = MAX_VALUE) -> int:
    """An upper bound of ``len(str(value))``, computed only as far as ``limit``: a list
    that repeats one long string a million times is refused without being printed."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() // 3 + 2
    if isinstance(value, Mapping):
        total = 2
        for key, item in value.items():
            total += text_bound(key, limit) + text_bound(item, limit) + 4
            if total > limit:
                return total
        return total
    if isinstance(value, list | tuple | set | frozenset):
        total = 2
        for item in value:
            total += text_bound(item, limit) + 2
            if total > limit:
                return total
        return total
    return 64  # numbers, dates, None, undefined: short


def checked(value: Any) -> Any:
    """``value`` if it is within the size limits (and counted as produced), else refused."""
    if isinstance(value, str | bytes | list | tuple | dict | set | frozenset):
        size = len(value)
        if size > MAX_VALUE:
            raise _too_long(size)
        _current().produce(size if isinstance(value, str | bytes) else 0)
    elif isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > MAX_INT_BITS:
            raise TemplateLimit(f"a number of more than {MAX_INT_BITS:,} bits")
    return value


def _sized(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return int(value)


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse an operation whose result would break a limit, before it runs."""
    _current().step()
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            size, count = _sized(seq), _count(times)
            if size is not None and count is not None and size * count > MAX_VALUE:
                raise _too_long(size * count)
    elif operator == "+":
        a, b = _sized(left), _sized(right)
        if a is not None and b is not None and a + b > MAX_VALUE:
            raise _too_long(a + b)
    elif operator == "**":
        base, exponent = _count(left), _count(right)
        if (
            base is not None
            and exponent is not None
            and abs(base) > 1
            and exponent * base.bit_length() > MAX_INT_BITS
        ):
            raise TemplateLimit(f"a number of more than {MAX_INT_BITS:,} bits")
    elif operator == "%" and isinstance(left, str | bytes):
        fmt = left if isinstance(left, str) else left.decode("latin-1")
        _check_printf(fmt)
        args = right if isinstance(right, tuple) else (right,)
        estimate = len(fmt) + sum(text_bound(a) for a in args)
        if estimate > MAX_VALUE:
            raise _too_long(estimate)


_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_FORMAT_NUMBER = re.compile(r"\d+")


def _check_printf(fmt: str) -> None:
    for match in _PRINTF_SPEC.finditer(fmt):
        for part in match.groups():
            if part == "*":
                raise TemplateLimit("a width or precision given as * in a % format")
            if part and int(part) > MAX_VALUE:
                raise _too_long(int(part), "a width or precision of", "")


def _check_format(fmt: str, args: Iterable[Any]) -> None:
    """``str.format`` and the ``format`` filter: widths within the limit, and the
    arguments' text within it too."""
    for spec in re.findall(r"\{[^{}]*\}", fmt):
        for number in _FORMAT_NUMBER.findall(spec.partition(":")[2]):
            if int(number) > MAX_VALUE:
                raise _too_long(int(number), "a width or precision of", "")
    estimate = len(fmt) + sum(text_bound(a) for a in args)
    if estimate > MAX_VALUE:
        raise _too_long(estimate)


def _check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if not isinstance(text, str) or not isinstance(old, str) or not isinstance(new, str):
        return
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    size = len(text) + found * (len(new) - len(old))
    if size > MAX_VALUE:
        raise _too_long(size)


def _check_join(items: Any, separator: Any = "") -> list[Any]:
    """The items, as a list (a generator is consumed once), if their text fits."""
    listed = list(items)
    if len(listed) > MAX_VALUE:
        raise _too_long(len(listed))
    size = text_bound(separator) * max(len(listed) - 1, 0)
    for item in listed:
        size += text_bound(item)
        if size > MAX_VALUE:
            raise _too_long(size)
    return listed


_PADDING = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "indent", "wordwrap"})


def _check_numbers(args: Iterable[Any]) -> None:
    for arg in args:
        count = _count(arg)
        if count is not None and abs(count) > MAX_VALUE:
            raise _too_long(abs(count), "a width or count of", "")


def check_call(func: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Check a call from a template before it runs (``call`` of the sandbox); answers
    the arguments to call with (a joined generator is passed on as a list)."""
    _current().step()
    target = getattr(func, "__wrapped__", func)
    name = getattr(target, "__name__", "")
    owner = getattr(target, "__self__", None)
    if isinstance(owner, str | bytes):
        _check_numbers([*args, *kwargs.values()])
        if name in ("format", "format_map") and isinstance(owner, str):
            _check_format(owner, [*args, *kwargs.values()])
        elif name == "replace" and args:
            _check_replace(owner, *args[:3])
        elif name == "join" and args:
            return (_check_join(args[0], owner), *args[1:])
    return args


def _checked_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` (a filter) behind the same checks as a call, its result counted."""
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

    @wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        spent = _current()
        spent.step()
        call = list(args)
        value = call[skip] if len(call) > skip else None
        _check_numbers([*call[skip + 1 :], *kwargs.values()])
        if name == "replace":
            _check_replace(value, *call[skip + 1 : skip + 4])
        elif name == "join" and len(call) > skip:
            call[skip] = _check_join(value, call[skip + 1] if len(call) > skip + 1 else "")
        elif name == "format" and isinstance(value, str):
            _check_format(value, [*call[skip + 1 :], *kwargs.values()])
        elif name in ("string", "tojson", "pprint", "list") and text_bound(value) > MAX_VALUE:
            raise _too_long(text_bound(value))
        return checked(func(*call, **kwargs))

    return run


def checked_filters(filters: Mapping[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """Every filter behind its checks, with the two hooks :func:`instrument` uses."""
    out = {name: _checked_filter(name, func) for name, func in filters.items()}
    out[ITERATE] = iterate
    out[PRODUCED] = produced
    return out


def checked_range(*args: int) -> range:
    """``range`` of at most ``MAX_VALUE`` numbers."""
    numbers = range(*args)
    if len(numbers) > MAX_VALUE:
        raise _too_long(len(numbers), "a range of", " numbers")
    return numbers


@pass_context
def iterate(_context: Context, iterable: Any) -> Iterator[Any]:
    """A loop's iterable, one step of the budget per iteration."""
    spent = _current()
    for item in iterable:
        spent.step()
        yield item


@pass_context
def produced(_context: Context, value: Any) -> Any:
    """An output (or ``~`` result), counted, refused past the limits."""
    spent = _current()
    spent.step()
    size = text_bound(value, MAX_PRODUCED)
    if size > MAX_VALUE:
        raise _too_long(size)
    spent.produce(size)
    return value


def _hook(node: nodes.Node, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


def _hooked(child: Any) -> Any:
    if isinstance(child, nodes.Concat):
        return _hook(child, PRODUCED)
    if isinstance(child, list):
        return [_hooked(c) for c in child]
    return child


def instrument(tree: nodes.Template) -> nodes.Template:
    """``tree`` with every loop's iterable, output and ``~`` routed through the hooks."""
    everything = [tree, *tree.find_all(nodes.Node)]
    for node in everything:  # ``~`` first, wherever it stands
        for field in node.fields:
            setattr(node, field, _hooked(getattr(node, field, None)))
    for node in everything:
        if isinstance(node, nodes.For):
            node.iter = _hook(node.iter, ITERATE)
        elif isinstance(node, nodes.Output):
            node.nodes = [
                c if isinstance(c, nodes.Filter) and c.name == PRODUCED else _hook(c, PRODUCED)
                for c in node.nodes
            ]
    return tree


def output_limit(chunks: Iterable[str], limit: int = MAX_OUTPUT) -> str:
    """The rendered text, refused once it passes ``limit`` characters."""
    out: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise TemplateLimit(f"an output of more than {limit:,} characters")
        out.append(chunk)
    return "".join(out)


__all__ = [
    "MAX_CPU_S",
    "MAX_INPUT",
    "MAX_INT_BITS",
    "MAX_OUTPUT",
    "MAX_PRODUCED",
    "MAX_VALUE",
    "MAX_WORK",
    "Budget",
    "TemplateLimit",
    "TemplateProblem",
    "budget",
    "check_binop",
    "check_call",
    "checked",
    "checked_filters",
    "checked_range",
    "instrument",
    "output_limit",
    "text_bound",
]
