"""What a person types for a stored thing: its whole id, its name, or a unique id prefix.

:func:`resolve` turns such a reference into the thing's whole id (or its name, which
every named store looks up itself) once for every kind, so every command that takes an
id takes a prefix too: ``run_3f2a`` for ``run_3f2a9c…``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, or_, select

from calflow.db.models import (
    ApiTokenRow,
    EventRow,
    IntegrationRow,
    ReplayJobRow,
    RunRow,
    WorkflowRow,
)
from calflow.errors import NotFoundError, ValidationError
from calflow.workflows.suggest import did_you_mean

__all__ = [
    "EVENT",
    "INTEGRATION",
    "REPLAY_JOB",
    "RUN",
    "TOKEN",
    "WORKFLOW",
    "RefKind",
    "resolve",
]

SHOWN = 10
"""At most this many candidates are named when a prefix is ambiguous."""
_NAMES = 1000
"""At most this many names are compared with a name that matches none."""


@dataclass(frozen=True)
class RefKind:
    """A kind of stored thing: what it is called and the table holding its ids."""

    what: str
    table: Any
    """The mapped class: it has ``id`` and ``workspace_id`` columns (and ``name`` when
    ``named``)."""
    named: bool = False
    missing: str = ""
    """How "not found" begins (default ``no <what>``), as the kind's store words it."""

    def not_found(self, ref: str, where: str, hint: str = "") -> NotFoundError:
        return NotFoundError(f"{self.missing or 'no ' + self.what} {ref!r}{where}{hint}")


INTEGRATION = RefKind(
    "integration", IntegrationRow, named=True, missing="no integration named or with id"
)
WORKFLOW = RefKind("workflow", WorkflowRow, named=True)
RUN = RefKind("run", RunRow)
EVENT = RefKind("event", EventRow)
REPLAY_JOB = RefKind("replay job", ReplayJobRow)
TOKEN = RefKind("token", ApiTokenRow)


def resolve(
    engine: Engine, kind: RefKind, ref: str, workspace_id: str | None, where: str = ""
) -> str:
    """``ref`` itself when it is a whole id (or, for a named kind, a name) in the workspace
    (``None``: in any workspace); else the one id that starts with it.

    ``NotFoundError`` naming ``ref`` (and, for a named kind, the closest name) when nothing
    matches; ``ValidationError`` listing the candidates when several ids start with it.
    ``where`` ends both messages (e.g. ``" in workspace 'acme'"``).
    """
    table = kind.table
    scoped = [] if workspace_id is None else [table.workspace_id == workspace_id]
    exact = table.id == ref
    if kind.named:
        exact = or_(exact, table.name == ref)
    with engine.connect() as conn:
        if conn.execute(select(table.id).where(exact, *scoped).limit(1)).first() is not None:
            return ref
        if not ref:
            raise kind.not_found(ref, where)
        query = (
            select(table.id)
            .where(table.id.startswith(ref, autoescape=True), *scoped)
            .order_by(table.id)
            .limit(SHOWN + 1)
        )
        found = [str(row[0]) for row in conn.execute(query)]
        if not found and kind.named:
            names = conn.execute(select(table.name).where(*scoped).limit(_NAMES)).scalars()
            raise kind.not_found(ref, where, did_you_mean(ref, names))
    if not found:
        raise kind.not_found(ref, where)
    if len(found) == 1:
        return found[0]
    listed = ", ".join(found[:SHOWN]) + (", …" if len(found) > SHOWN else "")
    raise ValidationError(
        f"{ref!r} is ambiguous: several {kind.what} ids{where} start with it ({listed}); "
        "give more of the id"
    )
