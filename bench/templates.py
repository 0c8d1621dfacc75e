"""Bounded templates (issue #16): what the limits cost a normal render, and how fast a
bomb is stopped.

Baseline, in the same run: the same templates rendered by Jinja's own
``ImmutableSandboxedEnvironment`` with calflow's filters (no limits, no hooks), and the
round trip of one render sent to a one-process pool (what rendering in a killable child
would cost per field). Then
each attack of issue #16 is rendered through calflow's bounded renderer, and the time
and peak memory until it is refused are printed (the unbounded baseline is not run on
these: it takes seconds to minutes and gigabytes).

Usage: ``.venv/bin/python bench/templates.py [--n 20000] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from calflow.events.model import BookingEvent, Person
from calflow.workflows import templates

NORMAL = [
    "Reminder: {{ booking.title }} with {{ organizer.name }} at "
    "{{ booking.start | local(attendee.time_zone, '%a %d %b %H:%M') }}",
    "{{ attendee.phone }}",
    "Hi {{ attendee.first_name }}, {% for a in attendees %}{{ a.name }}{% if not loop.last %}"
    ", {% endif %}{% endfor %} ({{ booking | duration }} min) {{ booking.uid ~ '-x' }}",
]

ATTACKS = {
    "constant folding 'x' * 4*10**8": "{{ 'x' * 4*10**8 }}",
    "two nested range(10000)": (
        "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}"
    ),
    "namespace doubling": (
        "{% set ns = namespace(s='x') %}{% for i in range(60) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}"
    ),
    "center(4*10**8)": "{{ 'x' | center(400000000) }}",
    "format width": "{{ '{:>999999999}'.format(1) }}",
    "join of a repeated list": "{{ (['x' * 50000] * 100000) | join }}",
    "set block in a loop": (
        "{% set s %}{% for i in range(100000) %}" + "x" * 200 + "{% endfor %}{% endset %}{{ s }}"
    ),
    "exponential macro": (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"
    ),
}


def _context() -> dict[str, Any]:
    at = datetime(2030, 1, 7, 9, tzinfo=UTC)
    ann = Person(name="Ann Lee", email="ann@example.com", phone="+15005550006",
                 time_zone="Europe/Paris")  # fmt: skip
    event = BookingEvent(provider="cal_com", kind="created", booking_uid="uid-1",
                         source="webhook", occurred_at=at, received_at=at, start=at,
                         end=at.replace(hour=10), title="Intro call", attendees=(ann, ann),
                         organizer=ann)  # fmt: skip
    return templates.context(event, {}, at)


def _plain() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    bounded = templates.environment()
    for name in ("local", "iso", "duration"):
        env.filters[name] = getattr(bounded.filters[name], "__wrapped__", bounded.filters[name])
    return env


def _render_first(_: int) -> str:
    return str(templates.render(NORMAL[0], _context()))


def _per_render_us(render: Any, n: int) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            render()
        best = min(best, (time.perf_counter() - start) / n * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--json")
    args = parser.parse_args()
    ctx = _context()
    plain = _plain()
    out: dict[str, Any] = {"normal": [], "attacks": {}}
    for text in NORMAL:
        compiled = plain.from_string(text)
        base = _per_render_us(lambda c=compiled: c.render(ctx), args.n)  # type: ignore[misc]
        ours = _per_render_us(lambda t=text: templates.render(t, ctx), args.n)  # type: ignore[misc]
        assert templates.render(text, ctx) == compiled.render(ctx)
        out["normal"].append({"template": text[:40], "jinja_us": round(base, 2),
                              "calflow_us": round(ours, 2),
                              "ratio": round(ours / base, 2)})  # fmt: skip
    with ProcessPoolExecutor(1) as pool:
        pool.submit(_render_first, 0).result()
        hop = _per_render_us(lambda: pool.submit(_render_first, 0).result(), max(args.n // 10, 1))
    out["process_pool_round_trip_us"] = round(hop, 1)
    for name, text in ATTACKS.items():
        tracemalloc.start()
        start = time.perf_counter()
        try:
            templates.render(text, ctx, "input.body")
            verdict = "rendered (a limit is missing)"
        except templates.TemplateProblem as exc:
            verdict = str(exc)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out["attacks"][name] = {"refused_after_ms": round(elapsed * 1000, 1),
                                "peak_mb": round(peak / 1e6, 2), "error": verdict}  # fmt: skip
    for row in out["normal"]:
        print(f"normal {row['template']!r:44} jinja {row['jinja_us']:7.2f} us  "
              f"calflow {row['calflow_us']:7.2f} us  ratio {row['ratio']}")  # fmt: skip
    print(f"one render in a process pool (round trip): {hop:.1f} us")
    for name, row in out["attacks"].items():
        print(f"attack {name:34} refused after {row['refused_after_ms']:7.1f} ms, "
              f"peak {row['peak_mb']:6.2f} MB: {row['error']}")  # fmt: skip
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
