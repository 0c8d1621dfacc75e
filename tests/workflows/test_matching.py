"""Trigger filters: every filter given must hold; a failing ``when`` gives a reason."""

from __future__ import annotations

from typing import Any

import pytest

from calflow.events import EventType, Person
from calflow.workflows.definition import Trigger, parse
from calflow.workflows.matching import matches

from ._support import booking_event, workflow_doc

NAMES = {"int_main": "main", "int_other": "other"}


def trigger(**filters: Any) -> Trigger:
    """The trigger of a parsed definition (so the test also covers how filters are read)."""
    return parse(workflow_doc(trigger={"kinds": "created", **filters})).trigger


def test_kind_must_be_listed() -> None:
    assert matches(trigger(), booking_event()) == (True, None)
    assert matches(trigger(), booking_event(kind="cancelled")) == (False, None)
    both = trigger(kinds=["cancelled", "rescheduled"])
    assert matches(both, booking_event(kind="rescheduled")) == (True, None)
    assert matches(both, booking_event()) == (False, None)


@pytest.mark.parametrize(
    ("filters", "event", "expected"),
    [
        ({"providers": "cal_com"}, {}, True),
        ({"providers": ["savvycal"]}, {}, False),
        ({"providers": ["savvycal", "cal_com"]}, {}, True),
        ({"sources": "webhook"}, {}, True),
        ({"sources": ["replay", "api"]}, {}, False),
        ({"sources": ["replay", "api"]}, {"source": "replay"}, True),
        ({"event_types": "101"}, {}, True),
        ({"event_types": "intro"}, {}, True),
        ({"event_types": ["999", "other-slug"]}, {}, False),
        ({"event_types": "intro"}, {"event_type": None}, False),
        ({"event_types": "101"}, {"event_type": EventType(slug="intro")}, False),
        ({"attendee_has_phone": True}, {}, True),
        ({"attendee_has_phone": False}, {}, False),
        ({"attendee_has_phone": True}, {"attendees": (Person(email="a@b.c"),)}, False),
        ({"attendee_has_phone": False}, {"attendees": (Person(email="a@b.c"),)}, True),
        ({"attendee_has_phone": True}, {"attendees": ()}, False),
    ],
)
def test_filters(filters: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    assert matches(trigger(**filters), booking_event(**event), NAMES) == (expected, None)


def test_integrations_by_id_or_by_name() -> None:
    event = booking_event()  # came through int_main, named "main"
    assert matches(trigger(integrations="int_main"), event) == (True, None)
    assert matches(trigger(integrations="main"), event, NAMES) == (True, None)
    assert matches(trigger(integrations=["x", "main"]), event, NAMES) == (True, None)
    # a name needs the id → name map; a different integration does not match
    assert matches(trigger(integrations="main"), event) == (False, None)
    assert matches(trigger(integrations="other"), event, NAMES) == (False, None)
    assert matches(trigger(integrations="int_other"), event, NAMES) == (False, None)
    # an event that came through no integration matches no integration filter
    assert matches(trigger(integrations="main"), booking_event(integration_id=None), NAMES) == (
        False,
        None,
    )


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("*@example.com", True),  # case-insensitive: the attendee is Ann@Example.com
        ("*@EXAMPLE.COM", True),
        ("ann@example.com", True),
        ("a?n@*", True),
        ("*@example.org", False),
        ("ann@", False),
        ("bob@*", False),
    ],
)
def test_attendee_email_glob(pattern: str, expected: bool) -> None:
    assert matches(trigger(attendee_email=pattern), booking_event()) == (expected, None)


def test_attendee_email_matches_any_attendee_and_tolerates_missing_emails() -> None:
    attendees = (Person(name="no email"), Person(email="bob@partner.io"))
    event = booking_event(attendees=attendees)
    assert matches(trigger(attendee_email="*@partner.io"), event) == (True, None)
    assert matches(trigger(attendee_email="*@example.com"), event) == (False, None)
    assert matches(trigger(attendee_email="*"), booking_event(attendees=())) == (False, None)


def test_when_expression() -> None:
    t = trigger(when="'intro' in booking.title | lower and attendee.time_zone == 'Europe/Paris'")
    assert matches(t, booking_event()) == (True, None)
    assert matches(t, booking_event(title="Demo")) == (False, None)
    assert matches(trigger(when="booking | duration >= 45"), booking_event()) == (True, None)
    assert matches(trigger(when="booking.metadata.items == 'meta-items'"), booking_event()) == (
        True,
        None,
    )


@pytest.mark.parametrize(
    ("when", "needle"),
    [
        ("booking.title.upper() == 'X'", "upper"),  # title None: no upper()
        ("booking.start > 3", "not supported"),
        ("booking.titel == 'x'", "titel"),
        ("''.__class__.__mro__", "unsafe"),
        ("booking.start | local('Nowhere/Zone')", "unknown time zone 'Nowhere/Zone'"),
    ],
)
def test_a_failing_when_returns_a_reason_instead_of_raising(when: str, needle: str) -> None:
    ok, reason = matches(trigger(when=when), booking_event(title=None))
    assert ok is False
    assert reason is not None and needle in reason


def test_when_is_checked_last_so_an_unmatched_event_gives_no_reason() -> None:
    t = trigger(providers="savvycal", when="booking.start > 3")
    assert matches(t, booking_event()) == (False, None)
    ok, reason = matches(t, booking_event(provider="savvycal"))
    assert not ok and reason is not None and reason.startswith("trigger.when: ")


def test_a_when_that_is_only_an_undefined_name_gives_a_reason() -> None:
    ok, reason = matches(trigger(when="attendee.phonee"), booking_event())
    assert ok is False
    assert reason is not None and "phonee" in reason


def test_every_filter_must_hold() -> None:
    every = {
        "kinds": "created",
        "providers": "cal_com",
        "integrations": "main",
        "event_types": "intro",
        "sources": "webhook",
        "attendee_has_phone": True,
        "attendee_email": "*@example.com",
        "when": "booking.uid == 'uid-1'",
    }
    t = parse(workflow_doc(trigger=every)).trigger
    assert matches(t, booking_event(), NAMES) == (True, None)
    spoilers = {
        "kinds": {"kind": "cancelled"},
        "providers": {"provider": "savvycal"},
        "integrations": {"integration_id": "int_other"},
        "event_types": {"event_type": EventType(id="7", slug="other")},
        "sources": {"source": "api"},
        "attendee_has_phone": {"attendees": (Person(email="ann@example.com"),)},
        "attendee_email": {"attendees": (Person(email="x@y.z", phone="+15550100"),)},
        "when": {"booking_uid": "uid-2"},
    }
    assert set(spoilers) == set(every)
    for name, change in spoilers.items():
        assert matches(t, booking_event(**change), NAMES) == (False, None), name
