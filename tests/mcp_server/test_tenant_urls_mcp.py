"""The SDK's client against ``calflow mcp`` (stdio): a tool whose integration targets an
address the operator does not allow, or whose URL argument does, is a tool error naming
the field and ``CALFLOW_ALLOW_PRIVATE``; nothing is sent (a recording stand-in)."""

from __future__ import annotations

import sys
from pathlib import Path

from mcp import Client, StdioServerParameters

from calflow.db.engine import reset_engines
from calflow.integrations import IntegrationStore
from calflow.settings import Settings
from calflow.workspaces import WorkspaceStore
from cli.recorder import recording_server
from e2e.sandbox_process import child_env

from .conftest import structured

SID = "AC" + "2" * 32


async def test_tools_refuse_targets_the_operator_does_not_allow(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with recording_server() as receiver:
        try:
            store = IntegrationStore.default(Settings(home=home, database_url=None))
            # saved while the operator allowed loopback; this process allows nothing
            store.add("twilio", "sms", {"base_url": receiver.url, "account_sid": SID},
                      {"auth_token": "tok_mcp_4411"})  # fmt: skip
            store.add("http", "web", {"allow_private": "false"}, {})
            WorkspaceStore(store.engine).update_settings(
                "default", {"mcp": {"expose": ["@read", "web.request"]}}
            )
        finally:
            reset_engines()
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "calflow.cli.main", "mcp", "--workspace", "default"],
            env=child_env(CALFLOW_HOME=str(home), CALFLOW_ALLOW_PRIVATE=""),
        )
        async with Client(params) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            account = next(n for n in names if n.startswith("twilio_sms__get_account"))
            refused = await client.call_tool(account, {})
            assert refused.is_error
            error = structured(refused)["error"]
            assert "base_url" in error["message"] and "CALFLOW_ALLOW_PRIVATE" in error["message"]
            assert "tok_mcp_4411" not in error["message"]
            request = next(n for n in names if n.startswith("http_web__request"))
            meta = await client.call_tool(
                request, {"url": "http://169.254.169.254/latest/meta-data", "method": "GET"}
            )
            assert meta.is_error
            details = structured(meta)["error"]["details"]
            assert [d["field"] for d in details] == ["url"]
            assert "link-local" in details[0]["message"]
            assert "CALFLOW_ALLOW_PRIVATE" in details[0]["message"]
        assert receiver.requests == []
