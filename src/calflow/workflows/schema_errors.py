"""JSON Schema violations of a workflow definition, as problems a person can act on.

jsonschema reports a value that fits no ``oneOf`` variant as "is not valid under any of
the given schemas" and every unexpected key of an object as one error on the object.
:func:`schema_problems` instead descends into the variant the value's shape picks (a
timing object → the object variant, so ``at.before_start`` is named), names each
unexpected key by its own path with the nearest known key, and says what a duration
looks like.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError

from calflow.durations import DURATION_HINT
from calflow.errors import FieldError
from calflow.workflows.suggest import did_you_mean

__all__ = ["DURATION_HINT", "schema_problems"]

_SHAPE_RULES = ("type", "const", "enum")


def schema_problems(validator: Draft202012Validator, document: Any) -> list[FieldError]:
    """Every violation of the validator's schema in ``document``, by field path."""
    duration = validator.schema.get("$defs", {}).get("duration")
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    return [problem for error in errors for problem in _explain(error, duration)]


def _path(parts: Iterable[Any]) -> str:
    return ".".join(str(p) for p in parts)


def _explain(error: SchemaError, duration: Any) -> list[FieldError]:
    path = _path(error.absolute_path)
    if error.validator in ("oneOf", "anyOf") and error.context:
        branch = _fitting_branch(error)
        if branch is None:
            alternatives = " or ".join(_describe(s) for s in error.validator_value)
            return [FieldError(path, f"must be {alternatives}", str(error.validator))]
        return [p for e in branch for p in _explain(e, duration)]
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        known = list(error.schema.get("properties", {}))
        return [
            FieldError(
                _path([*error.absolute_path, key]),
                f"unknown key {key!r}{did_you_mean(str(key), known)} (keys: {', '.join(known)})",
                "additionalProperties",
            )
            for key in error.instance
            if key not in known
        ]
    if duration is not None and error.schema == duration and error.validator in ("type", "pattern"):
        return [
            FieldError(path, f"{error.instance!r} is not a duration: {DURATION_HINT}", "duration")
        ]
    return [FieldError(path, error.message, str(error.validator))]


def _fitting_branch(error: SchemaError) -> list[SchemaError] | None:
    """The errors of the variant whose shape (type, constant) the value has: the one
    with the fewest errors if several fit, None if none does (or one had no error)."""
    by_branch: dict[int, list[SchemaError]] = {i: [] for i in range(len(error.validator_value))}
    for sub in error.context or ():
        by_branch[int(sub.relative_schema_path[0])].append(sub)
    here = list(error.absolute_path)
    fitting = [
        errors
        for errors in by_branch.values()
        if not any(e.validator in _SHAPE_RULES and list(e.absolute_path) == here for e in errors)
    ]
    if not fitting or any(not errors for errors in fitting):
        return None
    return min(fitting, key=len)


def _describe(schema: Mapping[str, Any]) -> str:
    """A variant in words: ``'immediately'``, ``a string``, ``a list of strings``, ``an
    object (before_start, after_start, …)``."""
    if "const" in schema:
        return repr(schema["const"])
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items", {})
        return f"a list of {_plural(items.get('type'))}" if isinstance(items, Mapping) else "a list"
    if kind == "object":
        keys: Sequence[str] = list(schema.get("properties", {}))
        return f"an object ({', '.join(keys)})" if keys else "an object"
    return {"string": "a string", "integer": "an integer", "number": "a number",
            "boolean": "true or false"}.get(str(kind), "a value")  # fmt: skip


def _plural(kind: Any) -> str:
    return {"string": "strings", "integer": "integers", "object": "objects"}.get(
        str(kind), "values"
    )
