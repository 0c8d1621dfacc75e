"""SavvyCal group sessions end to end, every piece a real process: the sandbox (SavvyCal
sending signed ``event.attendee.*`` webhooks, Twilio taking the SMS), ``calflow serve``
(with its worker) and the ``calflow`` CLI.

Each attendee added to a group session is a booking change of their own: their own
reminder, which their leaving cancels and their moving moves, whatever the others do.
Each test applies its own workflow, triggered only by attendees of its own email domain,
so the tests share one sandbox, one home and one server per database (SQLite and
PostgreSQL) and never see each other's runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from calflow.db.engine import reset_engines
from calflow.workflows.runs import RunStore
from db_fixtures import temporary_database

from .sandbox_process import SandboxProcess, sandbox_process
from .serve_process import CalflowHome, ServeProcess, poll, serve_process

pytestmark = pytest.mark.slow

API_KEY = "cal_live_group_e2e_51c0e7"
SAVVYCAL_TOKEN = "pt_secret_group_e2e_8a3f0c6d2b91"
LEAD_S = 15
"""Seconds from applying the reminder workflow of the cancel test to its reminders being
due: room for two attendees to be added and one to leave before anything is sent."""


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class Group:
    """A sandbox and a home with the integrations ``sc`` (SavvyCal, its webhook pointing
    at a running ``calflow serve``) and ``sms`` (Twilio)."""

    sandbox: SandboxProcess
    home: CalflowHome
    serve: ServeProcess
    link_id: str
    """The SavvyCal group link ``workshop``."""
    starts: list[str]
    """Open starts of ``workshop``, a day apart or more, oldest first."""

    def control(self, path: str, body: Any = None) -> dict[str, Any]:
        """``POST /_sandbox/savvycal/<path>``: SavvyCal's own pages, not calflow."""
        return self.sandbox.control(f"savvycal/{path}", body)

    def session(self, start: str, domain: str) -> str:
        """A group session at ``start`` booked on the scheduling page; returns its id."""
        body = {"display_name": "Grace Hopper", "email": f"grace@{domain}",
                "time_zone": "America/New_York", "start_at": start,
                "end_at": (at(start) + timedelta(hours=1)).isoformat()}  # fmt: skip
        return str(self.control(f"links/{self.link_id}/events", body)["id"])

    def add(self, event_id: str, name: str, email: str, phone: str) -> None:
        body = {"display_name": name, "email": email, "time_zone": "Europe/Paris",
                "phone_number": phone}  # fmt: skip
        self.control(f"events/{event_id}/attendees", body)

    def apply(self, tmp: Path, name: str, domain: str, before_start: str) -> None:
        """A workflow that texts each attendee of ``domain`` added to a session."""
        flow = {
            "name": name,
            "trigger": {"kinds": ["attendee_added"], "providers": ["savvycal"],
                        "attendee_email": f"*@{domain}"},
            "steps": [{"id": "remind", "action": "twilio.SendSms", "integration": "sms",
                       "at": {"before_start": before_start},
                       "input": {"to": "{{ attendee.phone }}",
                                 "body": "See you soon, {{ attendee.first_name }}"}}],
        }  # fmt: skip
        path = tmp / f"{name}.json"
        path.write_text(json.dumps(flow), encoding="utf-8")
        self.home.json("workflows", "apply", str(path))

    def ended(self, workflow: str) -> dict[str, dict[str, Any]]:
        """The workflow's runs that ended, by seat."""
        done = ("succeeded", "cancelled", "failed")
        return {r["seat"]: r for r in self.runs(workflow) if r["status"] in done}

    def runs(self, workflow: str) -> list[dict[str, Any]]:
        """The workflow's runs, each with the seat (attendee email) that started it."""
        store = self.home.store()
        inbox = self.home.inbox()
        runs = RunStore(store.engine, store.workspace_id).list(workflow=workflow)
        return [{**r, "seat": inbox.get(r["event_id"])["event"]["seat"]} for r in runs]

    def texts(self, phone: str) -> list[dict[str, Any]]:
        """The SMS the Twilio sandbox took for ``phone``."""
        resp = httpx.get(
            f"{self.sandbox.root}/_sandbox/twilio/messages", params={"to": phone}, timeout=30
        )
        resp.raise_for_status()
        return list(resp.json())

    def flush(self) -> None:
        """Wait until the sandbox finished every webhook delivery it started (each one
        ends when ``serve`` answered, i.e. after the event was stored)."""
        self.sandbox.state(flush=True)


def workshop_starts(sb: SandboxProcess, link_id: str) -> list[str]:
    """Open starts of the group link over two weeks from tomorrow, one per day."""
    first = datetime.now(UTC).date() + timedelta(days=1)
    resp = httpx.get(
        f"{sb.savvycal}/v1/links/{link_id}/slots",
        params={"from": first.isoformat(), "until": (first + timedelta(days=13)).isoformat()},
        headers={"Authorization": f"Bearer {SAVVYCAL_TOKEN}"},
        timeout=30,
    )
    resp.raise_for_status()
    by_day: dict[str, str] = {}
    for slot in resp.json():
        by_day.setdefault(slot["start_at"][:10], slot["start_at"])
    return sorted(by_day.values())


@pytest.fixture(scope="module")
def group(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Group]:
    """The setup on ``request.param``: ``sqlite`` or ``postgresql``."""
    database: str = request.param
    with ExitStack() as stack:
        url = stack.enter_context(temporary_database()) if database == "postgresql" else None
        stack.callback(reset_engines)
        sb = stack.enter_context(
            sandbox_process(API_KEY, savvycal_token=SAVVYCAL_TOKEN, savvycal_seed=0)
        )
        twilio = httpx.get(f"{sb.root}/_sandbox/state", timeout=30).json()["twilio"]
        home = CalflowHome(tmp_path_factory.mktemp(f"group-{database}"), url)
        home.json(
            "integrations", "add", "savvycal", "--name", "sc",
            "--set", f"token={SAVVYCAL_TOKEN}", "--set", f"base_url={sb.savvycal}",
            forbidden=(SAVVYCAL_TOKEN,),
        )  # fmt: skip
        home.json(
            "integrations", "add", "twilio", "--name", "sms",
            "--set", f"account_sid={twilio['account_sid']}",
            "--set", f"auth_token={twilio['auth_token']}",
            "--set", f"base_url={sb.root}/twilio", "--set", "from_number=+15005550006",
        )  # fmt: skip
        server = stack.enter_context(serve_process(home.env()))
        home.json("webhooks", "register", "savvycal", "-i", "sc", "--url", server.url)
        link_id = next(x["id"] for x in sb.savvycal_state()["links"] if x["slug"] == "workshop")
        yield Group(sb, home, server, link_id, workshop_starts(sb, link_id))


on_both = pytest.mark.parametrize(
    "group", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


@on_both
def test_each_attendee_gets_one_reminder_and_one_leaving_cancels_only_theirs(
    group: Group, tmp_path: Path
) -> None:
    domain = "cancel.example.org"
    ann, bob = (f"ann@{domain}", "+33612000101"), (f"bob@{domain}", "+33612000102")
    start = group.starts[0]
    session = group.session(start, domain)
    # due LEAD_S seconds from now, whatever the session's start
    lead = int((at(start) - datetime.now(UTC)).total_seconds()) - LEAD_S
    group.apply(tmp_path, "group-cancel", domain, f"{lead}s")
    group.add(session, "Ann Lee", *ann)
    group.add(session, "Bob Stone", *bob)  # its delivery lists Ann too
    group.flush()
    poll(lambda: [r["status"] for r in group.runs("group-cancel")] == ["waiting"] * 2,
         what="one waiting reminder per attendee")  # fmt: skip
    assert sorted(r["seat"] for r in group.runs("group-cancel")) == [ann[0], bob[0]]

    group.control(f"events/{session}/attendees/{ann[0]}/cancel")  # Ann leaves alone
    group.flush()
    poll(lambda: len(group.ended("group-cancel")) == 2, wait_s=LEAD_S + 60,
         what="both runs to end")  # fmt: skip
    done = group.ended("group-cancel")
    assert done[ann[0]]["status"] == "cancelled"
    assert "seat cancelled" in (done[ann[0]]["cancel_reason"] or "")
    assert done[bob[0]]["status"] == "succeeded"
    assert [m["body"] for m in group.texts(bob[1])] == ["See you soon, Bob"]
    assert group.texts(ann[1]) == []
    shown = group.sandbox.savvycal_state()
    event = next(e for e in shown["events"] if e["id"] == session)
    assert [a["email"] for a in event["attendees"] if not a["is_organizer"]] == [
        f"grace@{domain}", bob[0]]  # fmt: skip
    assert len(group.runs("group-cancel")) == 2  # nothing else started


@on_both
def test_one_attendee_moving_moves_only_their_reminder(group: Group, tmp_path: Path) -> None:
    domain = "move.example.org"
    dee, eve = (f"dee@{domain}", "+33612000201"), (f"eve@{domain}", "+33612000202")
    start, later = group.starts[1], group.starts[3]
    session = group.session(start, domain)
    group.apply(tmp_path, "group-move", domain, "1h")
    group.add(session, "Dee Ray", *dee)
    group.add(session, "Eve Moss", *eve)
    group.flush()

    def due() -> dict[str, tuple[str, datetime]]:
        return {r["seat"]: (r["booking_uid"], datetime.fromisoformat(r["next_due_at"]))
                for r in group.runs("group-move")
                if r["status"] == "waiting" and r["next_due_at"]}  # fmt: skip

    poll(lambda: len(due()) == 2, what="two waiting reminders")
    reminder = at(start) - timedelta(hours=1)
    assert due() == {dee[0]: (session, reminder), eve[0]: (session, reminder)}

    moved = group.control(f"events/{session}/attendees/{eve[0]}/reschedule", {"start_at": later})
    new_session = moved["id"]
    assert new_session != session
    group.flush()
    poll(lambda: due().get(eve[0], ("", None))[0] == new_session, what="Eve's reminder to move")
    assert due() == {dee[0]: (session, reminder),
                     eve[0]: (new_session, at(later) - timedelta(hours=1))}  # fmt: skip
    assert len(group.runs("group-move")) == 2
    assert group.texts(dee[1]) == group.texts(eve[1]) == []
