"""The web console in Chromium against ``calflow serve`` and the sandbox (real processes).

The main scenario signs in, adds a Cal.com integration through the credential form
(after the form refused a base_url at the metadata address, by its field),
books a meeting with the action runner (variants switched, event type and slot picked
from fetched dropdowns), then finds the event, the reminder workflow's run with its
reminder scheduled, the workflow (toggled, edited with a validation error) and a replay.
The second test breaks the fetcher and the input: the dropdown shows the error, the
fields show their messages, and the form still books (as the provider then refuses).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .conftest import API_KEY, Served, Shots

pytestmark = pytest.mark.slow

REMINDER = {
    "name": "sms-reminder",
    "trigger": {"kinds": ["created"], "attendee_has_phone": True},
    "steps": [
        {
            "id": "remind",
            "action": "twilio.SendSms",
            "integration": "sms",
            "at": {"before_start": "1h"},
            "input": {"to": "{{ attendee.phone }}", "body": "See you at {{ booking.start }}"},
        }
    ],
}


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def _parse(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _sign_in(page: Any, served: Served, shots: Shots) -> None:
    page.goto(served.url + "/")
    _expect()(page.get_by_label("API token")).to_be_visible()
    shots(page, "sign-in")
    page.get_by_label("API token").fill("cfk_not_a_token")
    page.get_by_role("button", name="Sign in").click()
    _expect()(page.get_by_role("alert")).to_contain_text("not valid")
    page.get_by_label("API token").fill(served.token)
    page.get_by_role("button", name="Sign in").click()
    _expect()(page.get_by_test_id("workspace-name")).to_have_text("default")


def _add_calcom_integration(page: Any, served: Served, shots: Shots) -> None:
    expect = _expect()
    page.get_by_role("button", name="Add integration").first.click()
    page.locator("#new-app").select_option("cal_com")
    base_url = page.locator("#integration_credentials_base_url")
    expect(base_url).to_have_value("https://api.cal.com")  # the field's default, pre-filled
    expect(page.locator("#integration_credentials_api_key")).to_have_attribute("type", "password")
    page.locator("#integration_name").fill("main")
    # the metadata address is refused, by the field, naming the operator's setting
    base_url.fill("http://169.254.169.254/latest")
    page.locator("#integration_credentials_api_key").fill(API_KEY)
    page.locator("form button[type=submit]").click()
    refused = base_url.locator("xpath=..").locator(".error-detail")
    expect(refused).to_contain_text("link-local")
    expect(refused).to_contain_text("CALFLOW_ALLOW_PRIVATE")
    expect(page.locator("li[data-integration=main]")).to_have_count(0)
    base_url.fill(served.sandbox.calcom)
    page.locator("#integration_credentials_api_key").fill(API_KEY)
    shots(page, "integration-form", full_page=True)
    page.locator("form button[type=submit]").click()
    card = page.locator("li[data-integration=main]")
    expect(card).to_be_visible()
    expect(card.locator(".webhook-url")).to_contain_text(f"{served.url}/hooks/int_")
    expect(card).not_to_contain_text(API_KEY)
    card.get_by_role("button", name="Test connection").click()
    expect(card.locator(".test-result")).to_contain_text("Connection works")
    shots(page, "integrations")


def _pick(page: Any, field: str, *, typing: str = "", value: str | None = None) -> str:
    """Open the fetched dropdown of ``field``, search ``typing``, pick ``value`` (or the
    first match); returns the picked option's value."""
    box = page.locator(f"#input_{field}")
    _expect()(page.locator(f".fetcher-ready #input_{field}")).to_be_visible()  # loaded
    box.click()
    if typing:
        box.press_sequentially(typing)
    options = page.locator(f"#input_{field}__options li[role=option]")
    option = options.and_(page.locator(f"[data-value='{value}']")) if value else options.first
    picked = str(option.get_attribute("data-value"))
    option.click()
    return picked


def _run_requests(page: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda r: sent.append(r.post_data_json) if r.url.endswith("/run") else None,
    )
    return sent


def _action_trace(page: Any, served: Served, link: str, shots: Shots) -> None:
    """The booking's run (linked from its result): its one step, rendered."""
    expect = _expect()
    page.goto(f"{served.url}/{link}")
    step = page.locator("li.trace-step")
    expect(step).to_have_count(1)
    expect(step.locator(".port")).to_have_text("success")
    expect(step).to_contain_text("attempt 1")
    expect(step.locator(".json").first).to_contain_text('"name": "Ada Lovelace"')
    expect(step.locator(".json").last).to_contain_text('"status": "accepted"')
    shots(page, "action-run-trace")


def _book(page: Any, served: Served, shots: Shots) -> dict[str, Any]:
    """Book through the action runner; returns the booking the result panel shows."""
    expect = _expect()
    sent = _run_requests(page)
    page.locator("li[data-integration=main]").get_by_role("link", name="Run an action").click()
    expect(page.locator("#runner-action")).to_have_value("BookMeeting")
    variant = page.locator("#runner-variant")
    expect(variant.locator("option")).to_have_text(
        ["By event type", "By username and event slug", "By team and event slug"]
    )

    # the second variant: its own fields, and a dropdown that waits for its parent field
    variant.select_option(label="By username and event slug")
    expect(page.locator("#input_eventTypeId")).to_have_count(0)
    slug = page.locator("[data-fetcher=user_event_types]")
    expect(slug).to_contain_text("Fill in Username to load the options")
    page.locator("#input_username").fill("demo")
    expect(slug).to_contain_text("options from user_event_types")
    shots(page, "runner-variant-username")

    # back to the first: the event type from the fetched dropdown, then a slot for it
    variant.select_option(label="By event type")
    expect(page.locator("#input_username")).to_have_count(0)
    slots = page.locator("[data-fetcher=slots]")
    expect(slots).to_contain_text("Fill in Event type to load the options")
    expect(page.locator("[data-fetcher=event_types]")).to_contain_text("options from event_types")
    asked: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda r: asked.append(r.post_data_json) if r.url.endswith("/slots") else None,
    )
    other = _pick(page, "eventTypeId", typing="60")
    expect(slots).to_contain_text("options from slots")
    event_type = _pick(page, "eventTypeId", typing="30 min")
    expect(page.locator("#input_eventTypeId")).to_have_value("30 Minute Meeting (30m)")
    expect(slots).to_contain_text("options from slots")
    # the slots reload for each event type chosen, which goes to the fetcher as a number
    assert [a["context"] for a in asked][-2:] == [
        {"eventTypeId": int(other)},
        {"eventTypeId": int(event_type)},
    ]
    start = _pick(page, "start", value=None)
    expect(page.locator("#input_attendee_timeZone")).to_have_value("UTC")  # defaults
    expect(page.locator("#input_attendee_language")).to_have_value("en")
    page.locator("#input_attendee_name").fill("Ada Lovelace")
    page.locator("#input_attendee_email").fill("ada@example.com")
    page.locator("#input_attendee_phoneNumber").fill("+33 6 12 34 56 78")
    page.get_by_role("button", name="Run Book a meeting").click()

    result = page.locator("section.result")
    expect(result).to_have_attribute("data-port", "success")
    expect(result.locator(".port.tone-ok")).to_have_text("success")
    shots(page, "runner-success", full_page=True)
    if os.environ.get("CONSOLE_README_SCREENSHOT"):  # the README's picture
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=os.environ["CONSOLE_README_SCREENSHOT"])
    body = sent[-1]["input"]
    assert type(body["eventTypeId"]) is int and body["eventTypeId"] == int(event_type)
    assert body["start"] == start
    assert "username" not in body, "the other variant's fields are not sent"
    assert body["attendee"] == {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "timeZone": "UTC",
        "phoneNumber": "+33 6 12 34 56 78",
        "language": "en",
    }
    booking: dict[str, Any] = json.loads(result.locator(".result-data").inner_text())
    assert booking["eventTypeId"] == body["eventTypeId"]
    run_link = str(result.get_by_role("link", name="run ").get_attribute("href"))

    # the same slot again, by username and slug: a conflict, and the variant stays chosen
    variant.select_option(label="By username and event slug")
    page.locator("#input_username").fill("demo")
    _pick(page, "eventTypeSlug", value=booking["eventType"]["slug"])
    page.locator("#input_start").fill(_parse(start).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Run Book a meeting").click()
    expect(result).to_have_attribute("data-port", "conflict")
    expect(result.locator(".port.tone-warn")).to_have_text("conflict")
    expect(variant).to_have_value("1")
    expect(page.locator("#input_username")).to_have_value("demo")
    shots(page, "runner-conflict")
    again = sent[-1]["input"]
    assert again["username"] == "demo" and "eventTypeId" not in again
    assert _parse(again["start"]) == _parse(start)
    _action_trace(page, served, run_link, shots)
    return booking


def _refresh_until(page: Any, locator: Any, what: str, tries: int = 20) -> None:
    """Reload the page until ``locator`` shows up: each try gives the page's data a
    moment to load and render before reloading (checking at once after a reload missed
    data that arrived milliseconds later, try after try)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(tries):
        try:
            locator.first.wait_for(state="attached", timeout=1_000)
            return
        except PlaywrightTimeout:
            page.reload()
    raise AssertionError(f"{what} never appeared")


def _event_and_run(page: Any, booking: dict[str, Any], shots: Shots) -> None:
    expect = _expect()
    uid = booking["uid"]
    page.get_by_role("link", name="Events", exact=True).click()
    row = page.locator(f"tr[data-booking='{uid}']")
    _refresh_until(page, row, "the booking's event")
    expect(row).to_contain_text("created")
    expect(row).to_contain_text("Ada Lovelace")
    shots(page, "events")
    row.get_by_role("link").click()
    runs = page.locator("section.card", has_text="Runs for this booking")
    _refresh_until(page, runs.get_by_role("link", name="sms-reminder"), "the reminder's run")
    expect(runs).to_contain_text("waiting")
    shots(page, "event")

    page.get_by_role("link", name="Runs", exact=True).click()
    page.locator("#r-workflow").fill("sms-reminder")
    page.locator("#r-workflow").press("Enter")
    run_row = page.locator("tr[data-workflow=sms-reminder]", has_text=uid)
    expect(run_row).to_contain_text("waiting")
    shots(page, "runs")
    run_row.get_by_role("link").click()
    upcoming = page.locator("tr[data-upcoming=remind]")
    expect(upcoming).to_contain_text("twilio.SendSms")
    expect(upcoming).to_contain_text("before_start: 1h")
    due = upcoming.locator("time").get_attribute("datetime")
    assert due is not None and _parse(due) == _parse(booking["start"]) - timedelta(hours=1)
    shots(page, "run")


def _workflow(page: Any, served: Served, shots: Shots) -> None:
    expect = _expect()
    page.get_by_role("link", name="Workflows", exact=True).click()
    toggle = page.get_by_role("switch", name="sms-reminder enabled")
    expect(toggle).to_be_checked()
    toggle.click(force=True)
    expect(toggle).not_to_be_checked()
    assert served.api("GET", "/workflows/sms-reminder")["enabled"] is False
    note = page.locator(".toggle-note[data-workflow=sms-reminder]")
    expect(note).to_contain_text("1 run already started keeps waiting and runs when due")
    toggle.click(force=True)
    expect(toggle).to_be_checked()
    expect(note).to_have_text("Enabled; 1 run of it waiting.")
    assert served.api("GET", "/workflows/sms-reminder")["enabled"] is True
    shots(page, "workflows")
    page.get_by_role("link", name="sms-reminder").click()
    editor = page.locator("#definition")
    definition = json.loads(editor.input_value())
    assert definition["steps"][0]["action"] == "twilio.SendSms"
    definition["steps"][0]["action"] = "twilio.SendSmz"
    definition["steps"][0]["input"]["to"] = "{{ attendee.phone_number }}"
    editor.fill(json.dumps(definition, indent=2))
    page.get_by_role("button", name="Validate").click()
    problems = page.locator(".validation .field-errors li")
    expect(problems.first).to_be_visible()
    fields = [str(li.get_attribute("data-field")) for li in problems.all()]
    assert {"steps.0.action", "steps.0.input.to"} <= set(fields), fields
    expect(page.locator(".validation")).to_contain_text("SendSmz")
    expect(page.locator("li[data-field='steps.0.input.to']")).to_contain_text(
        "no field 'phone_number' on attendee; did you mean 'phone'?"
    )
    shots(page, "workflow-invalid", full_page=True)
    page.get_by_role("button", name="Save").click()  # refused: still version 1
    expect(page.locator(".validation")).to_be_visible()
    assert served.api("GET", "/workflows/sms-reminder")["version"] == 1


def _replay(page: Any, shots: Shots) -> None:
    expect = _expect()
    page.get_by_role("link", name="Replay", exact=True).click()
    expect(page.locator("#replay_target")).to_have_value("0")  # into calflow, the default
    page.get_by_role("button", name="Start replay").click()
    status = page.locator(".progress-block")
    expect(status).to_have_attribute("data-status", "completed", timeout=60_000)
    expect(page.locator("h2", has_text="Summary")).to_be_visible()
    items = int(page.locator("[data-counter=items]").inner_text())
    assert items > 0
    shots(page, "replay")


def test_book_through_the_console_and_follow_it_to_the_reminder(
    page: Any, served: Served, shots: Shots
) -> None:
    served.api("POST", "/integrations", {
        "app": "twilio", "name": "sms",
        "config": {"base_url": f"{served.sandbox.root}/twilio", "from_number": "+15005550006",
                   "account_sid": "AC" + "0" * 32},
        "secrets": {"auth_token": "not-used-before-the-reminder-is-due"},
    })  # fmt: skip
    served.api("POST", "/workflows", REMINDER)

    _sign_in(page, served, shots)
    _add_calcom_integration(page, served, shots)
    booking = _book(page, served, shots)
    _event_and_run(page, booking, shots)
    _workflow(page, served, shots)
    _replay(page, shots)
    assert len(shots.taken) >= 12 and all(p.stat().st_size > 10_000 for p in shots.taken)


def test_a_failing_fetcher_leaves_the_form_usable_and_fields_show_their_errors(
    page: Any, served: Served, shots: Shots
) -> None:
    expect = _expect()
    broken = served.api("POST", "/integrations", {
        "app": "cal_com", "name": "wrong-key",
        "config": {"base_url": served.sandbox.calcom}, "secrets": {"api_key": "cal_live_wrong"},
    })  # fmt: skip
    sent = _run_requests(page)
    page.goto(f"{served.url}/#token={served.token}")
    expect(page.get_by_test_id("workspace-name")).to_have_text("default")
    page.goto(f"{served.url}/#/runner?integration={broken['id']}&action=BookMeeting")

    dropdown = page.locator("[data-fetcher=event_types]")
    expect(dropdown.get_by_role("alert")).to_contain_text("Could not load options")
    expect(dropdown.get_by_role("alert")).to_contain_text("AUTH")
    expect(dropdown.get_by_role("button", name="Retry")).to_be_visible()
    shots(page, "fetcher-error")

    submit = page.get_by_role("button", name="Run Book a meeting")
    submit.click()  # nothing filled in: each field says what it needs, nothing is sent
    name_errors = page.locator("#input_attendee_name").locator("xpath=..").locator(".error-detail")
    expect(name_errors).to_have_text("is required")
    expect(page.locator(".form-group.has-error")).not_to_have_count(0)
    assert sent == []

    page.locator("#input_eventTypeId").fill("101")  # typed by hand: the dropdown failed
    page.locator("#input_start").fill("2030-01-07T09:00:00Z")
    page.locator("#input_attendee_name").fill("Ada")
    page.locator("#input_attendee_email").fill("not-an-email")
    page.locator("#input_attendee_timeZone").fill("Mars/Olympus_Mons")
    submit.click()
    email_errors = (
        page.locator("#input_attendee_email").locator("xpath=..").locator(".error-detail")
    )
    expect(email_errors).to_have_text("must be a valid email")
    zone = page.locator("#input_attendee_timeZone").locator("xpath=..").locator(".error-detail")
    expect(zone).to_have_text("must be a valid time-zone")
    shots(page, "field-errors", full_page=True)
    assert sent == []

    page.locator("#input_attendee_email").fill("ada@example.com")
    page.locator("#input_attendee_timeZone").fill("Europe/Paris")
    submit.click()
    result = page.locator("section.result")
    expect(result).to_have_attribute("data-port", "error")
    expect(result.locator(".port.tone-bad")).to_have_text("error")
    expect(result).to_contain_text("AUTH_ERROR")
    shots(page, "provider-refused")
    assert sent[-1]["input"]["eventTypeId"] == 101 and type(sent[-1]["input"]["eventTypeId"]) is int
    assert Path(shots.directory).is_dir()
