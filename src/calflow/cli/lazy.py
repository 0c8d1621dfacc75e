"""The ``calflow`` command group, loading each command's module only when it runs.

Every command module imports what its commands need (the database, httpx, the
engine), which costs about a second together; ``calflow --help`` and ``calflow
--version`` need none of it. :class:`LazyGroup` lists the commands from
:data:`COMMANDS` (name, module, attribute, one-line help) and imports a command's
module only when that command is resolved: to run it, show its help or complete its
arguments. ``tests/cli/test_lazy.py`` checks that each line of help here is the
command's own, so the listing cannot drift from the commands.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass

import click
import typer
from typer.core import TyperGroup

__all__ = ["COMMANDS", "Lazy", "LazyGroup", "load"]


@dataclass(frozen=True)
class Lazy:
    """Where a command is defined: ``module.attribute`` (a ``typer.Typer`` or a function)."""

    module: str
    attribute: str
    help: str


COMMANDS: dict[str, Lazy] = {
    "fetch": Lazy("calflow.cli.actions_cmd", "fetch", "List the options a data fetcher offers."),
    "sandbox": Lazy("calflow.cli.sandbox_cmd", "sandbox",
                    "Run the Cal.com (/calcom), SavvyCal (/savvycal) and Twilio (/twilio) "
                    "sandboxes with seeded data, and an SMTP sink that records mail."),
    "demo": Lazy("calflow.cli.demo_cmd", "demo",
                 "Book, reschedule and cancel against the sandbox and watch calflow send "
                 "the SMS and emails its ready-made workflows promise: sandbox, receiver "
                 "and engine in one process."),
    "replay": Lazy("calflow.cli.replay_cmd", "replay",
                   "Replay an integration's booking history to a webhook URL or into calflow."),
    "serve": Lazy("calflow.cli.serve_cmd", "serve",
                  "Run the calflow server: webhook receiver at /hooks/{integration_id}, and "
                  "workflows."),
    "worker": Lazy("calflow.cli.workflows_cmd", "worker",
                   "Run workflows: dispatch stored events and execute runs (scale out on "
                   "PostgreSQL)."),
    "prune": Lazy("calflow.cli.prune_cmd", "prune_cmd",
                  "Delete finished runs, old events, duplicate deliveries and replay jobs "
                  "past their age."),
    "doctor": Lazy("calflow.cli.doctor_cmd", "doctor",
                   "Check Python, settings, the home, database, keys, integrations and the "
                   "server."),
    "apps": Lazy("calflow.cli.apps_cmd", "apps_app", "Installed FlowApps."),
    "integrations": Lazy("calflow.cli.integrations_cmd", "integrations_app",
                         "Connections to apps, with encrypted credentials."),
    "actions": Lazy("calflow.cli.actions_cmd", "actions_app", "Run FlowApp actions."),
    "keys": Lazy("calflow.cli.keys_cmd", "keys_app", "Encryption keys of the credential vault."),
    "replays": Lazy("calflow.cli.replay_cmd", "replays_app", "Replay jobs: list, show, cancel."),
    "events": Lazy("calflow.cli.events_cmd", "events_app", "Booking events in calflow's inbox."),
    "webhooks": Lazy("calflow.cli.events_cmd", "webhooks_app",
                     "Provider webhooks pointing at calflow."),
    "workflows": Lazy("calflow.cli.workflows_cmd", "workflows_app",
                      "Workflow definitions (YAML or JSON)."),
    "runs": Lazy("calflow.cli.workflows_cmd", "runs_app", "Workflow runs and their step traces."),
    "mcp": Lazy("calflow.cli.mcp_cmd", "mcp_app",
                "MCP server: calflow's actions as tools for AI agents."),
    "tokens": Lazy("calflow.cli.tokens_cmd", "tokens_app", "API tokens (Authorization: Bearer …)."),
    "workspaces": Lazy("calflow.cli.tokens_cmd", "workspaces_app", "Workspaces (tenants)."),
}  # fmt: skip


_COMPLETION = ("install_completion", "show_completion")


def load(name: str) -> click.Command:
    """The click command ``name`` stands for, its module imported now."""
    where = COMMANDS[name]
    found = getattr(importlib.import_module(where.module), where.attribute)
    if isinstance(found, typer.Typer):  # a group, even of one command (`actions run`)
        command: click.Command = typer.main.get_group(found)
    else:
        single = typer.Typer()
        single.command(name)(found)
        command = typer.main.get_command(single)
    command.name = name
    # shell completion is the root's option (``calflow --install-completion``) alone
    command.params = [p for p in command.params if p.name not in _COMPLETION]
    return command


class LazyGroup(TyperGroup):
    """A Typer group whose commands are :data:`COMMANDS`, each loaded when resolved."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The loaded command, or a stand-in carrying its help (for listing) until then."""
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        where = COMMANDS.get(cmd_name)
        return None if where is None else click.Command(cmd_name, help=where.help)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name in COMMANDS and name not in self.commands:
            self.commands[name] = load(name)
        try:
            return click.Group.resolve_command(self, ctx, args)
        except click.UsageError as exc:
            close = difflib.get_close_matches(name, list(COMMANDS))
            if close:
                exc.message = (
                    f"{exc.message.rstrip('.')}. Did you mean {', '.join(map(repr, close))}?"
                )
            raise
