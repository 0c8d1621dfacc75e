"""The console's add-integration form carries ``webhook_signature`` (drawn from the app's
declaration, no rebuild): a wrong value shows the server's message on the field."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from .conftest import API_KEY, Served, Shots

pytestmark = pytest.mark.slow

STD = "whsec_" + base64.b64encode(b"console-standard-webhooks-key-01").decode()


def test_the_form_sets_webhook_signature_and_shows_its_error(
    page: Any, served: Served, shots: Shots
) -> None:
    from playwright.sync_api import expect

    page.goto(f"{served.url}/#token={served.token}")
    expect(page.get_by_test_id("workspace-name")).to_have_text("default")
    page.goto(f"{served.url}/#/integrations")
    page.get_by_role("button", name="Add integration").first.click()
    page.locator("#new-app").select_option("cal_com")
    field = page.locator("#integration_credentials_webhook_signature")
    expect(field).to_have_attribute("placeholder", "provider")
    page.locator("#integration_name").fill("relayed")
    page.locator("#integration_credentials_api_key").fill(API_KEY)
    field.fill("plain")
    page.locator("form button[type=submit]").click()
    errors = field.locator("xpath=..").locator(".error-detail")
    expect(errors).to_contain_text("must be one of: provider, standard")
    shots(page, "webhook-signature-error", full_page=True)
    field.fill("standard")
    page.locator("#integration_credentials_webhook_secret").fill(STD)
    page.locator("form button[type=submit]").click()
    card = page.locator("li[data-integration=relayed]")
    expect(card).to_contain_text("webhook_signature")
    expect(card).to_contain_text("standard")
    expect(card).not_to_contain_text(STD)
    made = next(i for i in served.api("GET", "/integrations")["items"] if i["name"] == "relayed")
    assert made["config"]["webhook_signature"] == "standard"
