"""Bounded templates: every attack of issue #16 is refused by the limit it breaks, with
the field named, before it builds its value; normal templates render as Jinja renders
them; nothing is computed while a template compiles."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from calflow.events import Person
from calflow.workflows import template_check, template_limits, templates
from calflow.workflows.templates import TemplateLimit, context, evaluate, render

from ._support import booking_event

CTX = context(booking_event(attendees=(Person(name="Ann Lee", phone="+15005550006"),)))

ATTACKS = {
    "{{ 'x' * 4*10**8 }}": "a value of 400,000,000 characters or items (at most 100,000)",
    "{{ [1] * 10**9 }}": "a value of 1,000,000,000 characters or items",
    "{{ 'ab' + 'x' * 99999 }}": "a value of 100,001 characters or items",
    "{{ 7 ** 99999 }}": "a number of more than 10,000 bits",
    "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}":
        "more than 100,000 steps (loop iterations, calls, outputs)",
    "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}":
        "more than 100,000 steps",
    "{{ range(10**6)|list }}": "a range of 1,000,000 numbers (at most 100,000)",
    "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}{{ ns.s }}": "a value of 131,072 characters or items",
    "{{ 'x' | center(400000000) }}": "a width or count of 400,000,000 (at most 100,000)",
    "{{ 'x'.ljust(10**9) }}": "a width or count of 1,000,000,000",
    "{{ '{:>999999999}'.format(1) }}": "a width or precision of 999,999,999",
    "{{ '{:>{}}'.format(1, 10**9) }}": "a width or count of 1,000,000,000",
    "{{ '%0999999999d' % 1 }}": "a width or precision of 999,999,999",
    "{{ '%*d' % (10**9, 1) }}": "a width or precision given as * in a % format",
    "{{ (['x' * 50000] * 100000) | join }}": "a value of 150,000 characters or items",
    "{{ ['x' * 50000] * 100000 }}": "a value of 1,000,042 characters or items",
    "{{ ('x' * 99999) | replace('x', 'yy') }}": "a value of 199,998 characters or items",
    "{{ ('x' * 1000).replace('', 'y' * 1000) }}": "a value of 1,002,000 characters or items",
    "{% set s %}{% for i in range(100000) %}" + "x" * 100 + "{% endfor %}{% endset %}{{ s }}":
        "more than 1,000,000 characters produced in all",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}": "calls nested too deeply",
    "{{ lipsum(30000) }}": "'lipsum' is undefined",
}  # fmt: skip


@pytest.mark.parametrize("text", list(ATTACKS))
def test_each_attack_is_refused_by_its_limit_naming_the_field(text: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(templates.TemplateProblem) as caught:
            render({"body": text}, CTX, "steps.sms.input")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(caught.value).startswith("steps.sms.input.body: "), caught.value
    assert ATTACKS[text] in str(caught.value)
    assert peak < 20_000_000, f"{peak:,} bytes allocated before the refusal"


def test_an_exponential_macro_stops_at_the_cpu_deadline() -> None:
    text = ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
            "{{ f(40) }}")  # fmt: skip
    with pytest.raises(TemplateLimit, match=r"body: more than (0\.5 s of CPU time|100,000 st)"):
        render({"body": text}, CTX, "input")


def test_output_is_capped_per_field_and_per_step_input() -> None:
    chunk = "{{ 'x' * 50000 }}"
    with pytest.raises(TemplateLimit, match=r"input.body: an output of more than 65,536"):
        render({"body": chunk * 2}, CTX, "input")
    fields = {f"f{n}": chunk for n in range(6)}  # 6 * 50,000 > 262,144 in all
    with pytest.raises(TemplateLimit, match=r"^input: more than 262,144 characters rendered"):
        render(fields, CTX, "input")
    assert len(render(fields | {"f5": "x"}, CTX, "input")["f0"]) == 50000


def test_a_when_expression_keeps_the_limits() -> None:
    with pytest.raises(TemplateLimit, match=r"trigger.when: more than 100,000 steps"):
        evaluate("range(100000)|map('string')|join|length > 0 and "
                 "range(100000)|map('string')|list|length > 0", CTX, "trigger.when")  # fmt: skip
    assert evaluate("attendee.phone.startswith('+1') and range(10)|list|length == 10", CTX)


def test_nothing_is_built_while_a_template_compiles() -> None:
    tracemalloc.start()
    try:
        for text in ("{{ 'x' * 4*10**8 }}", "{{ 'x' | center(400000000) }}",
                     "{{ 9 ** 9 ** 9 }}", "{{ ('x' ~ 'y') * 10**9 }}"):  # fmt: skip
            templates.check(text)
            templates.check_expression(text.strip("{} "))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000


NORMAL = [
    "Reminder: {{ booking.title }} at {{ booking.start | local('Europe/Paris', '%H:%M') }}",
    "{% for a in attendees %}{{ a.name }}{% if not loop.last %}, {% endif %}{% endfor %}",
    "{{ attendee.first_name ~ ' ' ~ attendee.last_name }} {{ '%05d' % 42 }} {{ 2 ** 10 }}",
    "{{ 'x' * 3 }}{{ [1, 2] + [3] }}{{ '{:>6}'.format('ab') }}{{ 'a-b'.replace('-', '+') }}",
    "{{ range(3)|map('string')|join(',') }} {{ attendee.name|center(12) }}|{{ 7 // 2 }}",
    "{% set ns = namespace(n=0) %}{% for i in range(5) %}{% set ns.n = ns.n + i %}"
    "{% endfor %}{{ ns.n }}{% macro hi(x) %}hi {{ x }}{% endmacro %} {{ hi('you') }}",
]


@pytest.mark.parametrize("text", NORMAL)
def test_normal_templates_render_as_jinja_renders_them(text: str) -> None:
    plain = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    plain.filters["local"] = templates.environment().filters["local"].__wrapped__
    expected = plain.from_string(text).render(CTX)
    assert render(text, CTX) == expected


def test_the_limits_reset_for_each_render() -> None:
    text = "{% for i in range(60000) %}{% endfor %}ok"  # 60,000 steps: twice is over one budget
    assert render({"a": text, "b": text}, CTX) == {"a": "ok", "b": "ok"}


def test_only_templates_with_loops_or_calls_leave_the_engine_loop() -> None:
    assert not templates.loops({"to": "{{ attendee.phone }}", "n": 3,
                                "b": ["{{ booking.start | local('UTC') }}", "plain"]})  # fmt: skip
    assert templates.loops({"b": ["{% for a in attendees %}{{ a.name }}{% endfor %}"]})
    assert templates.loops("{{ 'x'.center(9) }}")


def test_a_limit_is_found_at_apply_time_on_the_sample_booking() -> None:
    assert template_check.limit_problems("{{ 'x' * 10**9 }}") == [
        "breaks a template limit: a value of 1,000,000,000 characters or items (at most 100,000)"
    ]
    assert template_check.limit_problems("lipsum(5)", expression=True) == []  # an error, no limit
    assert template_check.limit_problems("{{ steps.sms.data.sid * 10**9 }}") == []  # run time
    assert template_check.limit_problems("{{ attendee.name * 3 }}") == []


def test_trial_renders_of_one_document_share_a_cpu_budget(monkeypatch: Any) -> None:
    monkeypatch.setattr(template_check, "TRIAL_CPU_S", 0.0)
    with template_check.trials():
        template_check.limit_problems("{% for i in range(50000) %}{% endfor %}")
        assert template_check.limit_problems("{{ 'x' * 10**9 }}") == []  # budget spent
    assert template_check.limit_problems("{{ 'x' * 10**9 }}") != []


def test_the_documented_limits() -> None:
    assert (template_limits.MAX_VALUE, template_limits.MAX_OUTPUT, template_limits.MAX_INPUT,
            template_limits.MAX_WORK, template_limits.MAX_PRODUCED, template_limits.MAX_CPU_S) == (
        100_000, 65_536, 262_144, 100_000, 1_000_000, 0.5)  # fmt: skip
