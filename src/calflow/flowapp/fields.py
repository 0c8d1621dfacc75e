"""An action's input fields as a person reads them, from its input JSON Schema.

:func:`input_fields` flattens the schema into rows (dotted paths for nested objects,
``[]`` for array items): type, whether the field is required, its default, its
description, the values it allows and the fetcher (``x-fetcher``) that offers its
options. The top-level ``oneOf`` variants come apart, each with the fields it adds or
changes, since the input takes exactly one of them (``calflow apps show APP ACTION``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from calflow.flowapp.schema import resolve_ref

__all__ = ["InputField", "input_fields"]


@dataclass(frozen=True)
class InputField:
    """One field of an action's input."""

    path: str
    type: str
    required: bool
    """Required within the object holding it (a nested field only once its parent is given)."""
    default: Any
    title: str
    description: str
    choices: tuple[Any, ...]
    """The only values allowed (``enum``; empty: any of its type)."""
    fetcher: str | None
    """The data fetcher whose options fill the field (``x-fetcher``)."""
    depends_on: tuple[str, ...]
    """The fields the fetcher needs first (``x-fetcher-depends-on``)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "type": self.type,
            "required": self.required,
            "default": self.default,
            "title": self.title,
            "description": self.description,
            "choices": list(self.choices),
            "fetcher": self.fetcher,
            "depends_on": list(self.depends_on),
        }


def input_fields(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``{"fields": [...], "variants": [{"title", "description", "required", "fields"}]}``:
    the fields every input has, and those of each top-level ``oneOf`` variant."""
    variants = [
        {
            "title": str(v.get("title", f"variant {i + 1}")),
            "description": str(v.get("description", "")),
            "required": [str(r) for r in v.get("required", [])],
            "fields": [f.to_dict() for f in _walk(v, schema, "")],
        }
        for i, v in enumerate(schema.get("oneOf", []))
    ]
    return {"fields": [f.to_dict() for f in _walk(schema, schema, "")], "variants": variants}


def _walk(node: Mapping[str, Any], root: Mapping[str, Any], prefix: str) -> Iterator[InputField]:
    """The fields of ``node``'s properties and of their own properties, depth first."""
    node = resolve_ref(node, root)
    required = set(node.get("required", []))
    for name, raw in node.get("properties", {}).items():
        sub = resolve_ref(raw, root)
        path = f"{prefix}{name}"
        yield _field(path, sub, name in required, root)
        yield from _walk(sub, root, path + ".")
        for key in ("anyOf", "allOf"):  # nested compositions: their fields, as plain ones
            for branch in sub.get(key, []):
                yield from _walk(branch, root, path + ".")
        for branch in sub.get("oneOf", []):
            yield from _walk(branch, root, path + ".")
        items = sub.get("items")
        if isinstance(items, Mapping):
            yield from _walk(items, root, path + "[].")


def _field(
    path: str, sub: Mapping[str, Any], required: bool, root: Mapping[str, Any]
) -> InputField:
    deps = sub.get("x-fetcher-depends-on", [])
    if isinstance(deps, str):
        deps = [deps]
    fetcher = sub.get("x-fetcher")
    return InputField(
        path=path,
        type=_type(sub, root),
        required=required,
        default=sub.get("default"),
        title=str(sub.get("title", "")),
        description=str(sub.get("description", "")),
        choices=tuple(sub.get("enum", ())),
        fetcher=None if fetcher is None else str(fetcher),
        depends_on=tuple(str(d) for d in deps),
    )


def _type(sub: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    """``string``, ``string (date-time)``, ``array of string``, ``integer | null``…"""
    declared = sub.get("type")
    types = [declared] if isinstance(declared, str) else list(declared or [])
    if not types:
        if "enum" in sub:
            return "enum"
        if "const" in sub:
            return "const"
        return "any"
    text = " | ".join(str(t) for t in types)
    if sub.get("format"):
        text += f" ({sub['format']})"
    items = sub.get("items")
    if "array" in types and isinstance(items, Mapping):
        text = text.replace("array", f"array of {_type(resolve_ref(items, root), root)}", 1)
    return text
