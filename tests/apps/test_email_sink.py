"""The sandbox's SMTP sink: started by the app's lifespan and by ``calflow sandbox``."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import subprocess
import sys
import time
from typing import Any

import httpx

from calflow.flowapp.runner import Runner
from calflow.sandbox import SandboxConfig, create_sandbox_app
from calflow.sandbox.smtp_sink import refusal
from e2e.sandbox_process import child_env, free_port

from .savvycal._support import make_integration

MAIL = {"to": "ada@example.com", "subject": "Reminder", "text": "Tomorrow at 10:00"}


async def send_to(port: int) -> Any:
    config = {"host": "127.0.0.1", "port": str(port), "security": "none"}
    found = make_integration({**config, "from_address": "desk@clinic.example"}, {})
    async with Runner(publish=False) as runner:
        return await runner.run_action(
            "email", "SendEmail", MAIL, dataclasses.replace(found, app_key="email")
        )


async def test_lifespan_starts_the_sink_and_state_shows_the_mail() -> None:
    app = create_sandbox_app(SandboxConfig(smtp_port=0))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sb") as root,
    ):
        sink = app.state.sandbox.smtp
        assert sink.address is not None
        result = await send_to(sink.address[1])
        assert result.port == "sent"
        state = (await root.get("/_sandbox/state")).json()["smtp"]
        assert state["listening"] == f"127.0.0.1:{sink.address[1]}"
        (mail,) = state["messages"]
        assert mail["rcpt_tos"] == ["ada@example.com"]
        assert mail["message_id"] == result.data["message_id"]
        assert (mail["subject"], mail["text"]) == ("Reminder", "Tomorrow at 10:00\n")
        listed = await root.get("/_sandbox/smtp/messages", params={"to": "ada@example.com"})
        assert [m["subject"] for m in listed.json()] == ["Reminder"]
        other = await root.get("/_sandbox/smtp/messages", params={"to": "bob@example.com"})
        assert other.json() == []
        await root.post("/_sandbox/reset")
        assert (await root.get("/_sandbox/state")).json()["smtp"]["messages"] == []
    assert sink.address is None  # stopped with the app


async def test_no_port_no_listener_and_a_busy_port_is_reported_not_fatal() -> None:
    quiet = create_sandbox_app(SandboxConfig())
    async with quiet.router.lifespan_context(quiet):
        assert quiet.state.sandbox.smtp.state_json() == {
            "listening": None,
            "error": None,
            "messages": [],
        }
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        app = create_sandbox_app(SandboxConfig(smtp_port=taken))
        async with app.router.lifespan_context(app):
            state = app.state.sandbox.smtp.state_json()
            assert state["listening"] is None and str(taken) in state["error"]


def test_magic_recipients() -> None:
    assert refusal("ada@example.com") is None
    assert str(refusal("reject@example.com")).startswith("550 ")
    assert str(refusal("Someone@REJECT.test")).startswith("550 ")
    assert str(refusal("tempfail.1@example.com")).startswith("451 ")


async def test_calflow_sandbox_serves_twilio_and_the_smtp_sink() -> None:
    port, smtp_port = free_port(), free_port()
    sid, token = "AC" + "e" * 32, "cli-twilio-token"
    cmd = [sys.executable, "-m", "calflow.cli.main", "sandbox", "--port", str(port)]
    cmd += ["--smtp-port", str(smtp_port), "--twilio-account-sid", sid]
    cmd += ["--twilio-auth-token", token]
    root = f"http://127.0.0.1:{port}"
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=child_env()
    )
    try:
        async with httpx.AsyncClient(base_url=root, timeout=5) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    (await http.get("/_sandbox/state")).raise_for_status()
                    break
                except httpx.HTTPError:
                    assert proc.returncode is None and time.monotonic() < deadline
                    await asyncio.sleep(0.05)
            result = await send_to(smtp_port)
            assert result.port == "sent"
            state = (await http.get("/_sandbox/state")).json()
            assert [m["subject"] for m in state["smtp"]["messages"]] == ["Reminder"]
            assert (state["twilio"]["account_sid"], state["twilio"]["auth_token"]) == (sid, token)
            account = await http.get(f"/twilio/2010-04-01/Accounts/{sid}.json", auth=(sid, token))
            assert account.status_code == 200
    finally:
        proc.terminate()
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=10)
    banner = out.decode()
    assert f"Twilio base URL: http://127.0.0.1:{port}/twilio" in banner
    assert f"SMTP sink: 127.0.0.1:{smtp_port}" in banner
