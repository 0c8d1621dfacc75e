"""Workflow definitions in the database: check, apply (create or update by name), list,
toggle, delete.

:meth:`WorkflowStore.check` makes every check ``workflows apply`` makes on the CLI, the
API and the console: the definition (:func:`~calflow.workflows.definition.parse` with
``applying=True``) and the integrations its steps name, in this workspace.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from calflow.db.engine import write_transaction
from calflow.db.models import DEFAULT_WORKSPACE, IntegrationRow, WorkflowRow
from calflow.db.types import utcnow
from calflow.errors import FieldError, NotFoundError, ValidationError
from calflow.flowapp.registry import Registry
from calflow.workflows.definition import WorkflowDef, parse
from calflow.workflows.integration_refs import IntegrationRef, integration_problems

log = logging.getLogger("calflow.workflows")


@dataclass(frozen=True)
class StoredWorkflow:
    """A workflow as stored: its id, version and enabled flag, and the parsed definition."""

    id: str
    name: str
    version: int
    enabled: bool
    definition: WorkflowDef
    updated_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "enabled": self.enabled,
            "updated_at": self.updated_at,
            "trigger": self.definition.source.get("trigger"),
            "steps": [s.id for s in self.definition.steps],
            "definition": dict(self.definition.source),
        }


Applied = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class Checked:
    """A definition that passed every check, and what did not stop it: with
    ``allow_missing_integrations``, the integrations it names that do not exist yet."""

    definition: WorkflowDef
    warnings: tuple[FieldError, ...] = ()


class WorkflowStore:
    """The workflows of one workspace."""

    def __init__(
        self,
        engine: Engine,
        workspace_id: str = DEFAULT_WORKSPACE,
        registry: Registry | None = None,
    ) -> None:
        self.engine = engine
        self.workspace_id = workspace_id
        self.registry = registry
        self._parsed: dict[tuple[str, int], WorkflowDef] = {}

    def _load(self, row: WorkflowRow) -> StoredWorkflow:
        definition = self._parsed.get((row.id, row.version))
        if definition is None:  # a version's definition never changes: parse it once
            definition = parse(row.definition, self.registry)
            self._parsed[(row.id, row.version)] = definition
        return StoredWorkflow(
            row.id, row.name, row.version, bool(row.enabled), definition, row.updated_at.isoformat()
        )

    def check(self, raw: Any, *, allow_missing_integrations: bool = False) -> Checked:
        """Check ``raw`` as ``workflows apply`` does, saving nothing.

        A ``ValidationError`` lists every problem by field path: the definition's, and
        each step integration that is not one of the workspace's integrations of the
        step's app. ``allow_missing_integrations`` turns the ones that do not exist
        (yet) into the result's warnings; one of another app is always an error.
        """
        warnings: list[FieldError] = []

        def integrations(document: Mapping[str, Any]) -> list[FieldError]:
            wrong, missing = integration_problems(document, self._integrations())
            if allow_missing_integrations:
                warnings.extend(missing)
                return wrong
            return wrong + missing

        definition = parse(raw, self.registry, applying=True, also=integrations)
        return Checked(definition, tuple(warnings))

    def _integrations(self) -> builtins.list[IntegrationRef]:
        query = select(IntegrationRow.id, IntegrationRow.name, IntegrationRow.app_key).where(
            IntegrationRow.workspace_id == self.workspace_id
        )
        with self.engine.connect() as conn:
            return [IntegrationRef(*map(str, row)) for row in conn.execute(query)]

    def apply(self, raw: Any) -> tuple[StoredWorkflow, Applied]:
        """Validate ``raw`` and create the workflow, or update the one with its name.

        The definition is checked as when applying (templates against the event model
        included); the integrations its steps name are not: :meth:`check` does that.

        Read and write are one transaction holding the write lock from its first read
        (``BEGIN IMMEDIATE`` on SQLite, the row locked on PostgreSQL), so an apply
        never trips on "database is locked" while ``calflow serve`` writes, and two
        applies of one workflow never lose a version.
        """
        definition = parse(raw, self.registry, applying=True)
        try:
            return self._save(raw, definition)
        except IntegrityError:  # created concurrently under the same name: now an update
            return self._save(raw, definition)

    def _save(self, raw: Any, definition: WorkflowDef) -> tuple[StoredWorkflow, Applied]:
        source = dict(definition.source)
        with write_transaction(self.engine) as conn, Session(bind=conn) as session:
            row = self._row(session, definition.name, lock=True)
            if row is None:
                row = WorkflowRow(
                    workspace_id=self.workspace_id,
                    name=definition.name,
                    definition=source,
                    enabled=int(definition.enabled),
                )
                session.add(row)
                outcome: Applied = "created"
            else:
                # a file that does not say `enabled` keeps what `workflows disable` set
                wanted = bool(row.enabled) if "enabled" not in raw else definition.enabled
                if row.definition == source and bool(row.enabled) == wanted:
                    return self._load(row), "unchanged"
                row.definition = source
                row.enabled = int(wanted)
                row.version += 1
                row.updated_at = utcnow()
                outcome = "updated"
            session.flush()
            return self._load(row), outcome

    def _row(self, session: Session, ref: str, lock: bool = False) -> WorkflowRow | None:
        # one query, an id match first: with ``lock``, the row it finds is locked at once
        query = (
            select(WorkflowRow)
            .where(WorkflowRow.workspace_id == self.workspace_id)
            .where(or_(WorkflowRow.id == ref, WorkflowRow.name == ref))
            .order_by((WorkflowRow.id == ref).desc())
            .limit(1)
        )
        found: WorkflowRow | None = session.scalars(
            query.with_for_update() if lock else query
        ).first()
        return found

    def get(self, ref: str) -> StoredWorkflow:
        """A workflow by id or name (``NotFoundError`` if none)."""
        with Session(self.engine) as session:
            row = self._row(session, ref)
            if row is None:
                raise NotFoundError(f"no workflow {ref!r}")
            return self._load(row)

    def list(self, enabled_only: bool = False) -> builtins.list[StoredWorkflow]:
        query = select(WorkflowRow).where(WorkflowRow.workspace_id == self.workspace_id)
        if enabled_only:
            query = query.where(WorkflowRow.enabled == 1)
        found = []
        with Session(self.engine) as session:
            for row in session.scalars(query.order_by(WorkflowRow.name)):
                try:
                    found.append(self._load(row))
                except ValidationError as exc:  # e.g. its app was uninstalled: skip, say why
                    log.warning("workflow %s is no longer valid, skipped: %s", row.name, exc)
        return found

    def set_enabled(self, ref: str, enabled: bool) -> StoredWorkflow:
        found = self.get(ref)
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(WorkflowRow)
                .where(WorkflowRow.id == found.id)
                .values(enabled=int(enabled), updated_at=utcnow())
            )
        return self.get(found.id)

    def delete(self, ref: str) -> StoredWorkflow:
        """Delete a workflow; its past runs stay (they name it)."""
        found = self.get(ref)
        with write_transaction(self.engine) as conn:
            conn.execute(delete(WorkflowRow).where(WorkflowRow.id == found.id))
        return found
