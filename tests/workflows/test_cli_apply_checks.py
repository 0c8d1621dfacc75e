"""``calflow workflows apply`` refuses a workflow's mistakes, every one by its field, and
``--allow-missing-integrations`` applies before the integrations exist, with warnings."""

from __future__ import annotations

import json
from pathlib import Path

from calflow.db.engine import reset_engines
from calflow.integrations import IntegrationStore
from calflow.settings import Settings
from calflow.workflows import builtin
from cli.conftest import run_calflow

from .test_cli import Calflow, calflow, ok, seeded, usage_error

__all__ = ["calflow"]

MISTAKES = """\
name: reminder
trigger:
  kinds: [BOOKING_CREATED]
  providers: calcom
steps:
  - id: sms
    action: twilio.SendSms
    integration: sms
    at: {before_start: 24 hours}
    input:
      to: "{{ attendee.phone_number }}"
      body: "See you {{ booking.start | local('Europe/Pariss') }}"
  - id: email
    action: email.SendEmail
    integration: email
    inputs: {to: "{{ attendee.email }}"}
"""

FINE = """\
name: thanks
trigger: {kinds: [created]}
steps:
  - id: email
    action: email.SendEmail
    integration: email
    input:
      to: "{{ attendee.email }}"
      subject: "Thanks"
      text: "Hi {{ attendee.first_name or attendee.name }}, see you {{ booking.start }}"
"""


def _integrations(home: Path, *apps: str) -> None:
    """Create integrations named like the built-ins expect: ``sms`` (twilio), ``email``."""
    try:
        store = IntegrationStore.default(Settings(home=home))
        if "twilio" in apps:
            config = {"from_number": "+15005550006", "account_sid": "AC" + "0" * 32}
            store.add("twilio", "sms", config, {"auth_token": "t"})
        if "email" in apps:
            store.add("email", "email", {"host": "127.0.0.1", "from_address": "a@example.com"}, {})
    finally:
        reset_engines()


def test_every_mistake_is_listed_by_field_and_nothing_is_applied(tmp_path: Path) -> None:
    home, flows = tmp_path / "home", tmp_path / "flows"
    flows.mkdir()
    (flows / "a.yaml").write_text(MISTAKES)
    (flows / "b.yaml").write_text(FINE.replace("booking.start", "bookng.start"))
    refused = run_calflow(home, "workflows", "apply", str(flows))
    a, b = flows / "a.yaml", flows / "b.yaml"
    usage_error(
        refused,
        "2 of 2 workflows are invalid (create the integrations first, or apply with "
        "--allow-missing-integrations)",
        f"{a}: trigger.kinds.0: unknown kind 'BOOKING_CREATED'; did you mean 'created'?",
        f"{a}: trigger.providers: unknown provider 'calcom'; did you mean 'cal_com'?",
        f"{a}: steps.0.at.before_start: '24 hours' is not a duration: a duration looks like "
        "24h, 90m, 1d12h",
        f"{a}: steps.0.input.to: no field 'phone_number' on attendee; did you mean 'phone'?",
        f"{a}: steps.0.input.body: unknown time zone 'Europe/Pariss'; did you mean 'Europe/Paris'?",
        f"{a}: steps.0.integration: no integration 'sms' in this workspace (it has no twilio "
        "integration yet)",
        f"{a}: steps.1.inputs: unknown key 'inputs'; did you mean 'input'?",
        f"{a}: steps.1.integration: no integration 'email' in this workspace",
        f"{b}: steps.0.input.text: no variable 'bookng'; did you mean 'booking'?",
        f"{b}: steps.0.integration: no integration 'email' in this workspace",
    )
    assert refused.err.count("phone_number") == 1  # each problem once
    with seeded(home) as (workflows, _):
        assert workflows.list() == []

    one = run_calflow(home, "workflows", "apply", str(b), "--allow-missing-integrations")
    usage_error(one, f"{b}: workflow 'thanks' is invalid", "steps.0.input.text: no variable")
    assert "allow-missing-integrations" not in one.err  # no hint: no integration is missing


def test_missing_integrations_are_allowed_as_warnings(tmp_path: Path, calflow: Calflow) -> None:
    home = tmp_path / "home"
    (tmp_path / "thanks.yaml").write_text(FINE)
    applied = ok(calflow(home, "workflows", "apply", str(tmp_path / "thanks.yaml"),
                         "--allow-missing-integrations"))  # fmt: skip
    assert applied.stdout.startswith("created: thanks (wf_")
    assert applied.err == (
        f"warning: {tmp_path / 'thanks.yaml'}: steps.0.integration: no integration 'email' in "
        "this workspace (it has no email integration yet)"
    )
    as_json = ok(calflow(home, "workflows", "apply", str(tmp_path / "thanks.yaml"),
                         "--allow-missing-integrations", "--json")).json  # fmt: skip
    assert as_json[0]["result"] == "unchanged"
    assert as_json[0]["warnings"] == [{
        "field": "steps.0.integration",
        "message": "no integration 'email' in this workspace (it has no email integration yet)",
    }]  # fmt: skip

    _integrations(home, "email")
    clean = ok(calflow(home, "workflows", "apply", str(tmp_path / "thanks.yaml"), "--json")).json
    assert clean[0]["warnings"] == [] and clean[0]["result"] == "unchanged"


def test_an_integration_of_another_app_is_refused_even_when_missing_ones_are_allowed(
    tmp_path: Path, calflow: Calflow
) -> None:
    home = tmp_path / "home"
    _integrations(home, "twilio")
    (tmp_path / "thanks.yaml").write_text(FINE.replace("integration: email", "integration: sms"))
    refused = calflow(home, "workflows", "apply", str(tmp_path / "thanks.yaml"),
                      "--allow-missing-integrations")  # fmt: skip
    usage_error(refused, "steps.0.integration: integration 'sms' belongs to app 'twilio'; "
                         "email.SendEmail needs one of app 'email'")  # fmt: skip


def test_the_built_in_workflows_apply_once_their_integrations_exist(
    tmp_path: Path, calflow: Calflow
) -> None:
    home = tmp_path / "home"
    refused = calflow(home, "workflows", "apply", "--builtin", "all")
    usage_error(
        refused,
        "4 of 4 workflows are invalid (create the integrations first",
        "built-in sms-reminder-24h: steps.0.integration: no integration 'sms'",
        "built-in sms-reminder-24h: steps.1.integration: no integration 'email'",
    )
    _integrations(home, "twilio", "email")
    applied = ok(calflow(home, "workflows", "apply", "--builtin", "all", "--json")).json
    assert sorted(r["name"] for r in applied) == builtin.names()
    assert {r["result"] for r in applied} == {"created"} and all(not r["warnings"] for r in applied)
    assert json.loads(json.dumps(applied))  # plain JSON
