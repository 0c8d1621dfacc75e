"""Actions with declaration mistakes, for ``App.problems()`` (not part of APP)."""

from __future__ import annotations

from typing import Any

from calflow.flowapp import ERROR, SUCCESS, Action, ActionContext, ActionResult, OutputPort


class _Base(Action):
    name = "Broken"
    description = "A declaration mistake."
    schema_file = "pick.json"

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        return ActionResult.ok()


class UnknownFetcher(_Base):
    key = "unknown_fetcher"
    schema_file = "unknown_fetcher.json"


class WrongDeps(_Base):
    key = "wrong_deps"
    schema_file = "wrong_deps.json"


class StringDeps(_Base):
    key = "string_deps"
    schema_file = "string_deps.json"


class NotJson(_Base):
    key = "not_json"
    schema_file = "not_json.json"


class InvalidSchema(_Base):
    key = "invalid_schema"
    schema_file = "invalid_schema.json"


class MissingSchema(_Base):
    key = "missing_schema"
    schema_file = "no_such_file.json"


class DuplicatePorts(_Base):
    key = "duplicate_ports"
    ports = (SUCCESS, SUCCESS, ERROR)


class NoErrorPort(_Base):
    key = "no_error_port"
    ports = (SUCCESS, OutputPort("failed", "It failed, but not as an error port."))


class LooseTwin(_Base):
    """Its key is ``Pick`` loosely (``pick``): the lookup index can keep only one."""

    key = "Pick"


class OnlyErrors(_Base):
    """No port a call that worked could answer on."""

    key = "only_errors"
    ports = (ERROR,)


class SkippedPort(_Base):
    """A port named like the route workflows give a skipped step."""

    key = "skipped_port"
    ports = (SUCCESS, OutputPort("skipped", "Did nothing."), ERROR)
