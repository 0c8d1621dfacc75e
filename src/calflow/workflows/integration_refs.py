"""The integrations a workflow's steps name, checked against those of the workspace.

A step's ``integration`` (a name or an id; a template such as ``{{
event.integration_id }}`` is only known at run time and is not checked) must be an
integration of the workspace, of the step's app: ``twilio.SendSms`` needs a ``twilio``
one. :func:`integration_problems` sorts what is wrong into two lists, because applying
a workflow before creating its integrations is allowed (``--allow-missing-integrations``)
while naming one of another app never is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from calflow.errors import FieldError
from calflow.workflows import templates
from calflow.workflows.suggest import did_you_mean

__all__ = ["MISSING", "IntegrationRef", "integration_problems"]

MISSING = "integration_missing"
"""The rule of a problem that names an integration the workspace does not have."""


@dataclass(frozen=True)
class IntegrationRef:
    """What the check needs to know of an integration."""

    id: str
    name: str
    app: str


def integration_problems(
    document: Mapping[str, Any], known: Sequence[IntegrationRef]
) -> tuple[list[FieldError], list[FieldError]]:
    """``(wrong, missing)`` for a definition: integrations of another app than their
    step's, and integrations the workspace does not have (rule ``MISSING``). Steps too
    broken to name an app and an integration are left to the schema's problems."""
    wrong: list[FieldError] = []
    missing: list[FieldError] = []
    steps = document.get("steps")
    for i, step in enumerate(steps if isinstance(steps, list) else []):
        ref = step.get("integration") if isinstance(step, Mapping) else None
        if not isinstance(ref, str) or templates.is_template(ref):
            continue
        if not isinstance(step.get("action"), str):
            continue
        app = str(step["action"]).partition(".")[0]
        where = f"steps.{i}.integration"
        same_app = sorted(k.name for k in known if k.app == app)
        found = next((k for k in known if k.id == ref), None)
        found = found or next((k for k in known if k.name == ref), None)
        if found is None:
            listed = (f"{app} integrations: {', '.join(same_app)}" if same_app
                      else f"it has no {app} integration yet")  # fmt: skip
            message = f"no integration {ref!r} in this workspace{did_you_mean(ref, same_app)}"
            missing.append(FieldError(where, f"{message} ({listed})", MISSING))
        elif found.app != app:
            others = f" ({app} integrations: {', '.join(same_app)})" if same_app else ""
            wrong.append(
                FieldError(
                    where,
                    f"integration {ref!r} belongs to app {found.app!r}; "
                    f"{step['action']} needs one of app {app!r}{others}",
                    "integration_app",
                )
            )
    return wrong, missing
