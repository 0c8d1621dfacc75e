"""Step templates: filters (DST-correct ``local``), strict names, the sandbox, the context."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calflow.events import Person
from calflow.workflows import templates
from calflow.workflows.templates import TemplateProblem, context, evaluate, render

from ._support import START, booking_event


def one(text: str, ctx: dict[str, Any] | None = None) -> Any:
    return render(text, ctx if ctx is not None else context(booking_event()))


@pytest.mark.parametrize(
    ("when", "zone", "shown"),
    [
        # Paris: CET (+1) until Sunday 29 March 2026 01:00 UTC, then CEST (+2).
        ("2026-03-28T09:00:00Z", "Europe/Paris", "Sat 28 Mar 10:00 CET"),
        ("2026-03-30T09:00:00Z", "Europe/Paris", "Mon 30 Mar 11:00 CEST"),
        ("2026-03-29T00:59:00Z", "Europe/Paris", "Sun 29 Mar 01:59 CET"),
        ("2026-03-29T01:00:00Z", "Europe/Paris", "Sun 29 Mar 03:00 CEST"),
        # New York falls back on 1 November 2026: 01:30 happens twice, EDT then EST.
        ("2026-11-01T05:30:00Z", "America/New_York", "Sun 01 Nov 01:30 EDT"),
        ("2026-11-01T06:30:00Z", "America/New_York", "Sun 01 Nov 01:30 EST"),
        # Southern hemisphere: Sydney is on daylight time in January.
        ("2026-01-15T00:00:00Z", "Australia/Sydney", "Thu 15 Jan 11:00 AEDT"),
        ("2026-07-15T00:00:00Z", "Australia/Sydney", "Wed 15 Jul 10:00 AEST"),
    ],
)
def test_local_is_dst_correct(when: str, zone: str, shown: str) -> None:
    start = datetime.fromisoformat(when.replace("Z", "+00:00"))
    ctx = context(booking_event(start=start, attendees=(Person(time_zone=zone),)))
    assert one('{{ booking.start | local(attendee.time_zone, "%a %d %b %H:%M %Z") }}', ctx) == shown


def test_local_defaults_and_inputs() -> None:
    ctx = context(booking_event(attendees=(Person(name="No Zone"),)))
    # no time zone: UTC, with the default format
    shown = "Tue 01 Dec 2026 09:00 UTC"
    assert one("{{ booking.start | local(attendee.time_zone) }}", ctx) == shown
    assert one("{{ booking.start | local }}", ctx) == shown
    # an ISO string, and a naive datetime (taken as UTC), are accepted too
    assert one('{{ "2026-07-01T12:00:00Z" | local("Asia/Tokyo", "%H:%M") }}', ctx) == "21:00"
    ctx["now"] = datetime(2026, 7, 1, 12, 0)
    assert one('{{ now | local("America/Los_Angeles", "%H:%M %Z") }}', ctx) == "05:00 PDT"
    # no value: empty, not an error
    ctx["booking"]["start"] = None
    assert one('{{ booking.start | local("Europe/Paris") }}', ctx) == ""


def test_local_with_an_unknown_zone_or_a_non_date_is_a_template_problem() -> None:
    with pytest.raises(TemplateProblem, match=r"input: unknown time zone 'Mars/Olympus'"):
        one('{{ booking.start | local("Mars/Olympus") }}')
    with pytest.raises(TemplateProblem, match="expected a date-time, got int"):
        one('{{ 5 | local("UTC") }}')


def test_iso_and_duration() -> None:
    ctx = context(booking_event())
    assert one("{{ booking.start | iso }}", ctx) == "2026-12-01T09:00:00Z"
    assert one('{{ "2026-07-01T14:00:00+02:00" | iso }}', ctx) == "2026-07-01T12:00:00Z"
    assert one("{{ booking | duration }}", ctx) == "45"
    ctx["booking"]["end"] = None
    assert one("{{ booking | duration }}", ctx) == "0"
    assert one("{{ booking.end | iso }}", ctx) == ""


def test_keys_come_before_attributes() -> None:
    ctx = context(
        booking_event(),
        steps={"get": {"port": "success", "data": {"uid": "u-9"}}, "items": {"port": "x"}},
    )
    assert one("{{ steps.get.port }}/{{ steps.get.data.uid }}/{{ steps.items.port }}", ctx) == (
        "success/u-9/x"
    )
    assert one("{{ booking.metadata.items }}", ctx) == "meta-items"
    # a name that is no key still reaches the (safe) attribute
    assert one("{{ booking.event_type.keys() | list | sort | join(',') }}", ctx) == "id,slug,title"


def test_undefined_names_are_errors_that_say_where() -> None:
    with pytest.raises(TemplateProblem, match=r"^input: .*'titel'"):
        one("{{ booking.titel }}")
    with pytest.raises(TemplateProblem, match=r"^input\.sms\.body: 'nobody' is undefined"):
        render({"sms": {"body": "Hi {{ nobody }}"}}, context(booking_event()))
    with pytest.raises(TemplateProblem, match=r"^input\.to\[1\]: "):
        render({"to": ["{{ attendee.email }}", "{{ steps.sms.data }}"]}, context(booking_event()))


def test_render_walks_dicts_and_lists_and_leaves_other_values_alone() -> None:
    ctx = context(booking_event())
    value = {
        "to": ["{{ attendee.phone }}", "fixed"],
        "body": "Hi {{ attendee.first_name }}, {{ booking.title }}",
        "count": 3,
        "flag": None,
        "nested": {"uid": "{{ booking.uid }}", "plain": "no {braces} here"},
    }
    assert render(value, ctx) == {
        "to": ["+33612345678", "fixed"],
        "body": "Hi Ann, Intro call with Ann",
        "count": 3,
        "flag": None,
        "nested": {"uid": "uid-1", "plain": "no {braces} here"},
    }


@pytest.mark.parametrize(
    "text",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ booking.__class__ }}",
        "{{ booking.start.__class__.__init__.__globals__ }}",
        "{{ '{0.__class__}'.format(booking) }}",
        "{{ lipsum.__globals__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ booking.metadata.update({'x': 1}) }}",
        "{{ attendees.append(1) }}",
        "{{ range(10000000) | list | length }}",
        "{{ ''['__class__'] }}",
        "{{ booking|attr('__class__') }}",
    ],
)
def test_the_sandbox_refuses_escapes(text: str) -> None:
    ctx = context(booking_event())
    with pytest.raises(TemplateProblem) as caught:
        render({"body": text}, ctx)
    message = str(caught.value)
    assert message.startswith("input.body: ")
    assert "<class" not in message and "subclasses" not in message
    assert ctx["booking"]["metadata"] == {"items": "meta-items"}  # nothing was changed
    assert len(ctx["attendees"]) == 1


def test_the_sandbox_refuses_escapes_in_when_expressions() -> None:
    with pytest.raises(TemplateProblem, match=r"^trigger\.when: .*unsafe"):
        evaluate("''.__class__.__mro__", context(booking_event()), "trigger.when")


def test_evaluate() -> None:
    ctx = context(booking_event())
    assert evaluate("'intro' in booking.title | lower", ctx) is True
    assert evaluate("booking | duration > 60", ctx) is False
    assert evaluate("attendee.phone is not none and booking.event_type.slug == 'intro'", ctx)
    with pytest.raises(TemplateProblem, match=r"^w: "):
        evaluate("booking.start > 3", ctx, "w")  # datetime vs int: TypeError, reported
    with pytest.raises(TemplateProblem, match=r"^when: .*'titel'"):
        evaluate("booking.titel == 'x'", ctx)


def test_check_and_check_expression() -> None:
    templates.check("Hi {{ attendee.name }}{% if x %}!{% endif %}")
    with pytest.raises(TemplateProblem, match=r"^template syntax: .*\(line 2\)"):
        templates.check("line one\n{{ oops")
    templates.check_expression("booking.title is none")
    with pytest.raises(TemplateProblem, match=r"^expression syntax: "):
        templates.check_expression("a ==")


def test_referenced_steps() -> None:
    assert templates.referenced_steps("{{ steps.a.port }} {% if steps.b.data.x %}{% endif %}") == {
        "a",
        "b",
    }
    assert templates.referenced_steps("{{ booking.steps.c }} {{ attendee.name }}") == set()
    assert templates.is_template("{% if x %}{% endif %}") and templates.is_template("{{ x }}")
    assert not templates.is_template("{ x } and {single} braces")


def test_context_shape() -> None:
    now = datetime(2026, 11, 30, 8, tzinfo=UTC)
    steps = {"get": {"port": "success"}}
    ctx = context(booking_event(), steps=steps, now=now)
    assert set(ctx) == {"event", "booking", "attendee", "attendees", "organizer", "steps", "now"}
    assert ctx["event"] == {
        "kind": "created",
        "provider": "cal_com",
        "source": "webhook",
        "original_type": "BOOKING_CREATED",
        "occurred_at": START - timedelta(days=1),
        "received_at": START - timedelta(days=1),
        "integration_id": "int_main",
    }
    booking = ctx["booking"]
    assert set(booking) == {
        "uid", "previous_uid", "title", "status", "start", "end", "location",
        "meeting_url", "reason", "event_type", "metadata",
    }  # fmt: skip
    assert booking["event_type"] == {"id": "101", "slug": "intro", "title": "Intro"}
    assert booking["start"] == START and booking["start"].tzinfo is not None
    attendee = ctx["attendee"]
    assert attendee == ctx["attendees"][0]
    assert (attendee["first_name"], attendee["last_name"]) == ("Ann", "Marie Lee")
    assert attendee["email"] == "Ann@Example.com" and attendee["time_zone"] == "Europe/Paris"
    assert ctx["organizer"]["first_name"] == "Olga" and ctx["organizer"]["last_name"] == "Organizer"
    assert ctx["steps"] == steps and ctx["steps"] is not steps
    assert ctx["now"] == now


def test_context_of_a_bare_event() -> None:
    before = datetime.now(UTC)
    ctx = context(
        booking_event(attendees=(), organizer=None, event_type=None, metadata={}, title=None)
    )
    assert ctx["attendees"] == [] and ctx["booking"]["event_type"] == {}
    # no attendee or organizer: every field there, all None (templates can test them)
    assert ctx["attendee"] == dict.fromkeys(Person.__dataclass_fields__)
    assert ctx["organizer"] == dict.fromkeys(Person.__dataclass_fields__)
    assert ctx["steps"] == {}
    assert before <= ctx["now"] <= datetime.now(UTC)
    assert render("{{ attendee.name is none }}", ctx) == "True"
    one_name = context(booking_event(attendees=(Person(name="Cher", first_name="C."),)))
    assert (one_name["attendee"]["first_name"], one_name["attendee"]["last_name"]) == ("C.", None)
