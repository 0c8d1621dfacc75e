"""The workspace a command acts in, and the ids it is given.

Every command that reads or changes a workspace's data takes ``--workspace`` / ``-w``
(a workspace name or id; default ``CALFLOW_WORKSPACE``, else ``default``) through
:func:`workspace_option`, and opens that workspace's stores through :func:`scope`. An
id argument is resolved by :meth:`Scope.ref`: a whole id, a name where the kind has
names, or a unique prefix of an id (:mod:`calflow.db.refs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

from calflow.db.models import DEFAULT_WORKSPACE

if TYPE_CHECKING:
    from calflow.db.refs import RefKind
    from calflow.events.inbox import Inbox
    from calflow.integrations import IntegrationStore
    from calflow.workflows.runs import RunStore
    from calflow.workflows.store import WorkflowStore
    from calflow.workspaces import Workspace

__all__ = ["WORKSPACE_ENV", "Scope", "scope", "workspace_option"]

WORKSPACE_ENV = "CALFLOW_WORKSPACE"
"""The environment variable naming the workspace of every command without ``-w``."""


def workspace_option(
    default: str | None = DEFAULT_WORKSPACE,
    help: str = f"Workspace name or id (default: ${WORKSPACE_ENV}, else 'default').",
    envvar: str | None = WORKSPACE_ENV,
) -> Any:
    """The ``--workspace`` / ``-w`` option every workspace command declares."""
    return typer.Option(default, "--workspace", "-w", envvar=envvar, help=help, show_default=False)


@dataclass(frozen=True)
class Scope:
    """One workspace's stores on the configured database."""

    workspace: Workspace
    store: IntegrationStore
    """The workspace's integrations (its engine and vault serve the other stores)."""

    @property
    def id(self) -> str:
        return self.workspace.id

    @property
    def where(self) -> str:
        """`` in workspace 'NAME'`` for messages; empty for the default workspace."""
        return "" if self.id == DEFAULT_WORKSPACE else f" in workspace {self.workspace.name!r}"

    def workflows(self) -> WorkflowStore:
        from calflow.workflows.store import WorkflowStore

        return WorkflowStore(self.store.engine, self.id)

    def runs(self) -> RunStore:
        from calflow.workflows.runs import RunStore

        return RunStore(self.store.engine, self.id)

    def inbox(self) -> Inbox:
        from calflow.events.inbox import Inbox

        return Inbox(self.store.engine, self.id)

    def ref(self, kind: RefKind, ref: str) -> str:
        """The whole id (or name) ``ref`` stands for in this workspace
        (:func:`calflow.db.refs.resolve`)."""
        from calflow.db.refs import resolve

        return resolve(self.store.engine, kind, ref, self.id, self.where)


def scope(workspace: str) -> Scope:
    """The stores of the workspace named (or with the id) ``workspace``; a
    ``NotFoundError`` (exit 2) saying how to list workspaces when there is none."""
    from calflow.integrations import IntegrationStore
    from calflow.workspaces import WorkspaceStore

    store = IntegrationStore.default()
    found = WorkspaceStore(store.engine).find(workspace)
    return Scope(found, IntegrationStore(store.engine, store.vault, found.id))
