"""Every shape Cal.com sends, built as Cal.com's own builders build it (PROVIDERS.md
"Real deliveries"): meetings flat and nested, the SMS-reminder number, time forms,
forms and recordings kept with their names."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from calflow.events.normalize import normalize

from . import real_bodies as rb

RECEIVED = datetime(2031, 3, 5, 12, 0, tzinfo=UTC)


def _row() -> dict[str, Any]:
    """A booking row as MeetingPayloadBuilder spreads it (host under ``user``)."""
    return {
        "id": 4242,
        "uid": "meet-uid-1",
        "title": "Intro call",
        "startTime": "2031-03-04T15:00:00.000Z",
        "endTime": "2031-03-04T15:30:00.000Z",
        "createdAt": "2031-02-01T08:00:00.000Z",  # when the booking was made
        "eventTypeId": 101,
        "status": "ACCEPTED",
        "user": {"name": "Host Person", "email": "host@example.com", "timeZone": "Europe/Paris"},
        "attendees": [rb.cal_attendee("Ann Lee", "ann@example.com")],
    }


def test_meeting_started_flat_shape() -> None:
    body = {"triggerEvent": "MEETING_STARTED", **_row()}
    event = normalize("cal_com", body, received_at=RECEIVED)
    assert (event.kind, event.booking_uid) == ("meeting_started", "meet-uid-1")
    assert event.organizer is not None and event.organizer.email == "host@example.com"
    assert event.start == datetime(2031, 3, 4, 15, tzinfo=UTC)
    assert event.occurred_at == RECEIVED  # the row's createdAt is the booking's
    assert [a.email for a in event.attendees] == ["ann@example.com"]


def test_meeting_ended_nested_shape_with_the_host_under_payload_user() -> None:
    body = {"triggerEvent": "MEETING_ENDED", "createdAt": "2031-03-04T15:31:00.000Z",
            "payload": _row()}  # fmt: skip
    event = normalize("cal_com", body, received_at=RECEIVED)
    assert (event.kind, event.booking_uid) == ("meeting_ended", "meet-uid-1")
    assert event.organizer is not None and event.organizer.email == "host@example.com"
    assert event.end == datetime(2031, 3, 4, 15, 30, tzinfo=UTC)
    assert event.occurred_at == datetime(2031, 3, 4, 15, 31, tzinfo=UTC)
    assert event.attendees[0].first_name == "Ann"


def test_the_sms_reminder_number_is_the_phone_when_no_other_is_given() -> None:
    payload = rb.cal_booking_payload(
        [rb.cal_attendee("Ann Lee", "ann@example.com")], ("Ann Lee", "ann@example.com"),
        seats=None, uid="sms-uid", smsReminderNumber="+14155550199",
    )  # fmt: skip
    payload["responses"]["smsReminderNumber"] = {"label": "sms", "value": "+14155550199"}
    event = normalize("cal_com", rb.cal_delivery("BOOKING_CREATED", payload, rb.START))
    assert event.attendees[0].phone == "+14155550199"
    only_responses = dict(payload)
    del only_responses["smsReminderNumber"]
    event = normalize("cal_com", rb.cal_delivery("BOOKING_CREATED", only_responses, rb.START))
    assert event.attendees[0].phone == "+14155550199"


@pytest.mark.parametrize(
    "value",
    ["2031-03-04T15:00:00Z", "2031-03-04T15:00:00.000Z", "2031-03-04T15:00:00+00:00",
     "2031-03-04T16:00:00+01:00"],
)  # fmt: skip
def test_every_time_form_cal_com_uses(value: str) -> None:
    payload = rb.cal_booking_payload([rb.ANN], ("Ann Lee", "ann@example.com"), seats=None,
                                     uid="t-uid", start=value)  # fmt: skip
    event = normalize("cal_com", rb.cal_delivery("BOOKING_CANCELLED", payload, value))
    assert event.start == datetime(2031, 3, 4, 15, tzinfo=UTC)


def test_form_submitted_and_recording_ready_are_kept_with_their_names() -> None:
    form = {"triggerEvent": "FORM_SUBMITTED", "createdAt": "2031-03-01T10:00:00.000Z",
            "payload": {"formId": "f1", "formName": "Intake", "responses": {"q": "a"}},
            "formId": "f1", "formName": "Intake", "q": "a"}  # fmt: skip
    event = normalize("cal_com", form, received_at=RECEIVED)
    assert (event.kind, event.original_type, event.booking_uid) == ("other", "FORM_SUBMITTED", "")
    rec = {"triggerEvent": "RECORDING_READY", "createdAt": "2031-03-04T16:00:00.000Z",
           "payload": {"uid": "meet-uid-1", "downloadLink": "https://cal.com/rec/1"}}  # fmt: skip
    event = normalize("cal_com", rec, received_at=RECEIVED)
    assert (event.original_type, event.booking_uid) == ("RECORDING_READY", "meet-uid-1")
    assert event.raw["payload"]["downloadLink"] == "https://cal.com/rec/1"
