"""Action and DataFetcher: the two things an app declares besides its credentials."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from jsonschema import Draft202012Validator
from jsonschema import exceptions as js_exc

from calflow.errors import ConfigError
from calflow.flowapp.context import ActionContext
from calflow.flowapp.model import ERROR, SUCCESS, ActionResult, Option, OutputPort
from calflow.flowapp.schema import InputSchema, iter_fields, load_schema

_SCHEMAS: dict[type[Any], InputSchema] = {}


class Action(ABC):
    """One thing an app can do. Subclasses declare the class attributes and ``execute``.

    ``schema_file`` is a JSON Schema file in the same package as the subclass's module.
    ``kind`` is ``read`` (no side effects), ``write`` or ``destructive`` (cancels,
    deletes): surfaces such as the MCP server decide what to expose from it.
    """

    key: ClassVar[str]
    name: ClassVar[str]
    description: ClassVar[str]
    schema_file: ClassVar[str]
    ports: ClassVar[tuple[OutputPort, ...]] = (SUCCESS, ERROR)
    kind: ClassVar[str] = "write"

    @classmethod
    def input_schema(cls) -> InputSchema:
        """The compiled input schema (loaded once per class)."""
        cached = _SCHEMAS.get(cls)
        if cached is None:
            package = cls.__module__.rpartition(".")[0]
            cached = InputSchema(load_schema(package, cls.schema_file))
            _SCHEMAS[cls] = cached
        return cached

    @classmethod
    def port(cls, key: str) -> OutputPort | None:
        return next((p for p in cls.ports if p.key == key), None)

    @classmethod
    def success_port(cls) -> str | None:
        """The port a call that did what was asked answers on: ``success`` when declared,
        else the first declared port that is not an error port (Twilio SendSms: ``sent``).

        A workflow step skipped because its time had passed goes where this port routes.
        """
        if cls.port(SUCCESS.key) is not None:
            return SUCCESS.key
        return next((p.key for p in cls.ports if not p.error), None)

    @classmethod
    def fetcher_refs(cls) -> list[tuple[str, str, list[str]]]:
        """(field path, fetcher key, depends-on fields) for every ``x-fetcher`` in the schema."""
        refs = []
        for path, sub in iter_fields(cls.input_schema().schema):
            if "x-fetcher" in sub:
                deps = sub.get("x-fetcher-depends-on", [])
                if isinstance(deps, str):  # one field named without a list
                    deps = [deps]
                refs.append((path, str(sub["x-fetcher"]), [str(d) for d in deps]))
        return refs

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The catalogue entry: key, name, description, kind, ports and input schema."""
        return {
            "key": cls.key,
            "name": cls.name,
            "description": cls.description,
            "kind": cls.kind,
            "ports": [p.to_dict() for p in cls.ports],
            "input_schema": cls.input_schema().schema,
        }

    @abstractmethod
    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        """Run with validated input; return a result on one of ``ports``."""

    async def reconcile(
        self, data: dict[str, Any], ctx: ActionContext, since: datetime
    ) -> ActionResult | None:
        """Did an attempt of this exact call, begun at ``since``, already take effect?

        The workflow engine asks before running a step again whose previous execution
        was cut off (a crash between the provider's answer and the checkpoint). Return
        that attempt's result if the provider shows it happened, None if it did not.
        The default, None, means the step runs again: at-least-once for actions that
        cannot look their effects up.
        """
        return None


class DataFetcher(ABC):
    """Options for a form field (``x-fetcher``), possibly depending on other fields.

    ``context`` is a JSON Schema of the context the fetcher reads (the fields it
    depends on and any options): context is coerced and validated against it like an
    action's input, and a key it does not declare is refused. Left unset, it is a closed
    object of the ``depends_on`` fields, all required.
    """

    key: ClassVar[str]
    name: ClassVar[str]
    description: ClassVar[str] = ""
    depends_on: ClassVar[tuple[str, ...]] = ()
    context: ClassVar[dict[str, Any] | None] = None

    @classmethod
    def context_schema(cls) -> InputSchema:
        """The compiled context schema (checked and compiled once per class)."""
        cached = _SCHEMAS.get(cls)
        if cached is None:
            schema = cls.context
            if schema is None:
                schema = {
                    "type": "object",
                    "properties": {d: {"title": d} for d in cls.depends_on},
                    "required": list(cls.depends_on),
                    "additionalProperties": False,
                }
            try:
                Draft202012Validator.check_schema(schema)
            except js_exc.SchemaError as exc:
                raise ConfigError(
                    f"fetcher {cls.key!r}: context is not a valid JSON Schema: {exc.message}"
                ) from exc
            cached = _SCHEMAS[cls] = InputSchema(schema, what="context")
        return cached

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "key": cls.key,
            "name": cls.name,
            "description": cls.description,
            "depends_on": list(cls.depends_on),
            "context_schema": cls.context_schema().schema,
        }

    @abstractmethod
    async def fetch(self, ctx: ActionContext, context: Mapping[str, Any]) -> list[Option]:
        """The options, given the values of the fields this fetcher depends on."""
