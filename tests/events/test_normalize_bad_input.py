"""Bodies that are not deliveries, type-confused fields, and fuzzing: a normalizer either
returns an event or raises ``ValidationError``, never anything else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calflow.errors import ConfigError, ValidationError
from calflow.events import BookingEvent
from calflow.events.normalize import normalize

NOW = datetime(2050, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("provider", "body", "needle"),
    [
        ("cal_com", None, "JSON object, got null"),
        ("cal_com", [], "JSON object, got list"),
        ("cal_com", "BOOKING_CREATED", "JSON object, got str"),
        ("cal_com", 7, "JSON object, got int"),
        ("cal_com", {}, "no triggerEvent"),
        ("cal_com", {"triggerEvent": ""}, "no triggerEvent"),
        ("cal_com", {"triggerEvent": 5, "payload": {}}, "no triggerEvent"),
        ("cal_com", {"triggerEvent": "BOOKING_CREATED", "payload": "x"}, "not an object"),
        ("cal_com", {"triggerEvent": "BOOKING_CREATED", "payload": None}, "not an object"),
        ("cal_com", {"type": "event.created", "payload": {"id": "event_1"}}, "no triggerEvent"),
        ("savvycal", None, "JSON object, got null"),
        ("savvycal", [1, 2], "JSON object, got list"),
        ("savvycal", {}, "no type"),
        ("savvycal", {"type": None, "payload": {}}, "no type"),
        ("savvycal", {"type": "event.created"}, "no payload object"),
        ("savvycal", {"type": "event.created", "payload": [1]}, "no payload object"),
        ("savvycal", {"triggerEvent": "BOOKING_CREATED", "payload": {"uid": "u"}}, "no type"),
    ],
)
def test_not_a_delivery(provider: str, body: Any, needle: str) -> None:
    with pytest.raises(ValidationError, match=needle) as info:
        normalize(provider, body)
    assert info.value.errors, "the error names the field"


def test_unknown_provider_and_source() -> None:
    with pytest.raises(ConfigError, match="no normalizer for provider 'zoom'"):
        normalize("zoom", {"triggerEvent": "X"})
    with pytest.raises(ValidationError, match="source"):
        normalize("cal_com", {"triggerEvent": "X"}, source="email")  # type: ignore[arg-type]


def test_type_confused_fields_read_as_missing() -> None:
    body = {
        "triggerEvent": "BOOKING_CREATED",
        "createdAt": "yesterday",
        "payload": {
            "uid": "u1",
            "startTime": 1234,
            "endTime": "0001-01-01T00:00:00+01:00",
            "status": ["ACCEPTED"],
            "title": {"x": 1},
            "organizer": "host",
            "attendees": [None, 3, "x", {"email": 5, "name": "Ann", "phoneNumber": 4155550123}],
            "responses": {"attendeePhoneNumber": {"value": ["+14155550123"]}, "email": 9},
            "metadata": ["videoCallUrl"],
            "location": "javascript:alert(1)",
            "eventTypeId": True,
            "smsReminderNumber": "+1 415 555 0123",
        },
    }
    event = normalize("cal_com", body, received_at=NOW)
    assert (event.kind, event.booking_uid, event.occurred_at) == ("created", "u1", NOW)
    assert (event.start, event.end, event.status, event.title) == (None, None, None, None)
    assert event.organizer is None and event.event_type is None and event.metadata == {}
    assert event.meeting_url is None and event.location == "javascript:alert(1)"
    [ann] = event.attendees
    assert (ann.name, ann.email, ann.phone) == ("Ann", None, "+14155550123")


def test_received_at_is_utc() -> None:
    body = {"triggerEvent": "BOOKING_CREATED", "payload": {"uid": "u"}}
    naive = normalize("cal_com", body, received_at=datetime(2050, 1, 1, 12))
    assert naive.received_at == datetime(2050, 1, 1, 12, tzinfo=UTC) == naive.occurred_at
    paris = timezone(timedelta(hours=2))
    shifted = normalize("cal_com", body, received_at=datetime(2050, 1, 1, 14, tzinfo=paris))
    assert shifted.received_at.utcoffset() == timedelta(0)
    assert shifted.received_at == naive.received_at
    before = datetime.now(UTC)
    assert normalize("cal_com", body).received_at >= before
    offset = {"triggerEvent": "X", "createdAt": "2050-01-01T14:00:00+02:00", "payload": {}}
    assert normalize("cal_com", offset).occurred_at == datetime(2050, 1, 1, 12, tzinfo=UTC)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
CAL_KEYS = st.sampled_from(
    ["uid", "bookingUid", "startTime", "endTime", "attendees", "organizer", "user",
     "responses", "metadata", "location", "status", "eventTypeId", "eventType", "type",
     "smsReminderNumber", "rescheduleUid", "cancellationReason", "title"]
)  # fmt: skip
SC_KEYS = st.sampled_from(
    ["id", "start_at", "end_at", "attendees", "organizer", "link", "conferencing", "state",
     "summary", "cancel_reason", "reschedule_reason", "metadata", "location", "event"]
)  # fmt: skip
TIME = st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()) | st.text()
PERSON = st.dictionaries(
    st.sampled_from(["name", "email", "timeZone", "phoneNumber", "language", "noShow",
                     "display_name", "phone_number", "is_organizer", "first_name", "fields"]),
    JSON | TIME,
    max_size=6,
)  # fmt: skip
SHAPED = st.dictionaries(CAL_KEYS | SC_KEYS, JSON | TIME | st.lists(PERSON, max_size=3))


def check(event: BookingEvent) -> None:
    for value in (event.occurred_at, event.received_at, event.start, event.end):
        assert value is None or value.utcoffset() == timedelta(0)
    assert event.dedupe_key().startswith(f"{event.provider}:")
    event.to_dict()
    assert BookingEvent.from_dict(event.to_dict()).dedupe_key() == event.dedupe_key()


def attempt(provider: str, body: Any) -> None:
    try:
        event = normalize(provider, body, received_at=NOW)
    except ValidationError:
        return
    check(event)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(provider=st.sampled_from(["cal_com", "savvycal"]), body=JSON)
def test_fuzz_any_json(provider: str, body: Any) -> None:
    attempt(provider, body)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    trigger=st.sampled_from(["BOOKING_CREATED", "BOOKING_NO_SHOW_UPDATED", "MEETING_ENDED"])
    | st.text(min_size=1),
    payload=SHAPED,
    flat=st.booleans(),
    created=TIME,
)
def test_fuzz_calcom_shapes(
    trigger: str, payload: dict[str, Any], flat: bool, created: str
) -> None:
    body = {"triggerEvent": trigger, **payload} if flat else {
        "triggerEvent": trigger, "createdAt": created, "payload": payload
    }  # fmt: skip
    attempt("cal_com", body)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    type_=st.sampled_from(["event.created", "event.rescheduled", "workflow.action.triggered"])
    | st.text(min_size=1),
    payload=SHAPED,
    occurred=TIME,
)
def test_fuzz_savvycal_shapes(type_: str, payload: dict[str, Any], occurred: str) -> None:
    attempt("savvycal", {"type": type_, "occurred_at": occurred, "payload": payload})
