"""Action input schemas as LLM tool callers accept them, and tool arguments back.

An action's schema is full JSON Schema 2020-12: a top-level ``oneOf`` of variants,
``$ref`` into ``$defs``, ``anyOf`` of required alternatives, ``if``/``then``,
``x-fetcher`` hints. Many tool callers (OpenAI's and Gemini's function calling,
several MCP hosts) take only a plain object schema at the top and drop or refuse
the rest, so each tool's ``inputSchema`` is rewritten:

- **oneOf → one object with a required ``variant``.** The branches' properties are
  merged into one ``properties`` map and a ``variant`` enum (the branches' titles,
  snake-cased) says which branch the call means; its description lists the fields
  each variant needs. One tool per action keeps the tool list short (tool choice
  degrades with many near-identical tools) and keeps "one tool per (integration,
  action)", which the exposure setting is written in. ``to_action_input`` refuses a
  call without ``variant``, takes it out again and refuses fields of another variant,
  naming them, so the action's own ``oneOf`` validation sees exactly one branch.
- **Closed.** A closed action schema (``additionalProperties`` or, with variants,
  ``unevaluatedProperties: false``) gives a tool schema with ``additionalProperties:
  false``, and ``to_action_input`` refuses an argument the tool does not declare by
  name, as the action does a nested one.
- ``$ref``/``$defs`` are inlined; ``x-*`` keys, ``propertyNames``, ``if``/``then``,
  ``dependentSchemas`` and top-level ``anyOf`` are dropped, and what they said goes
  into descriptions (the action still validates them: nothing is lost but the
  client-side check).
- ``x-fetcher`` becomes "Options: call tool <fetcher tool> (with <depends-on>)."
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from calflow.errors import FieldError, ValidationError
from calflow.flowapp.schema import closure, unknown_field

VARIANT = "variant"
"""The argument naming the variant of a flattened ``oneOf`` schema."""

# Keywords common tool callers understand, per schema node; everything else is dropped.
_KEEP = frozenset(
    {
        "type",
        "title",
        "description",
        "properties",
        "required",
        "items",
        "enum",
        "default",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "additionalProperties",
        "format",
    }
)
_FORMATS = frozenset({"date-time", "date", "email", "uri"})
_FORMAT_HINTS = {"time-zone": "An IANA time zone name, e.g. Europe/Paris or UTC."}

FetcherTool = Callable[[str], str | None]
"""Maps a fetcher key to the name of its tool (None when that fetcher is not a tool)."""


@dataclass(frozen=True)
class Variant:
    """One branch of a flattened ``oneOf``: its id, title, and the fields it brings."""

    id: str
    title: str
    properties: frozenset[str]
    required: tuple[str, ...]


@dataclass(frozen=True)
class ToolSchema:
    """A tool's input schema and the variants it was flattened from (empty: none)."""

    schema: dict[str, Any]
    variants: tuple[Variant, ...]
    root_properties: frozenset[str]


def snake(text: str) -> str:
    """``BookMeeting`` → ``book_meeting``; ``By team`` → ``by_team``."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text)
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _inline_refs(node: Any, defs: Mapping[str, Any], depth: int = 0) -> Any:
    """``node`` with every local ``$ref`` replaced by its target (siblings win)."""
    if depth > 20:  # a recursive schema: stop rather than loop
        return {}
    if isinstance(node, list):
        return [_inline_refs(v, defs, depth) for v in node]
    if not isinstance(node, Mapping):
        return node
    ref = node.get("$ref")
    out: dict[str, Any] = {}
    if isinstance(ref, str) and ref.startswith(("#/$defs/", "#/definitions/")):
        target = defs.get(ref.rsplit("/", 1)[1], {})
        out.update(_inline_refs(target, defs, depth + 1))
    for key, value in node.items():
        if key != "$ref":
            out[key] = _inline_refs(value, defs, depth)
    return out


def _describe_fetcher(node: Mapping[str, Any], fetcher_tool: FetcherTool) -> str:
    fetcher = node.get("x-fetcher")
    if not isinstance(fetcher, str):
        return ""
    tool = fetcher_tool(fetcher)
    if tool is None:
        return ""
    deps = node.get("x-fetcher-depends-on") or []
    if isinstance(deps, str):
        deps = [deps]
    with_deps = f" with {', '.join(map(str, deps))}" if deps else ""
    return f"Options: call tool {tool}{with_deps}."


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."


def _join(*parts: str) -> str:
    return " ".join(_sentence(p) for p in parts if p and p.strip())


def clean(node: Any, fetcher_tool: FetcherTool, *, fetcher_hint: bool = True) -> Any:
    """One property schema reduced to the keywords tool callers take (recursively).

    What the dropped keywords said goes into ``description`` (a title alone is not
    repeated there).
    """
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    notes: list[str] = []
    for key, value in node.items():
        if key not in _KEEP or key == "description":
            continue
        if key == "properties" and isinstance(value, Mapping):
            out[key] = {name: clean(sub, fetcher_tool) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, Mapping):
            out[key] = clean(value, fetcher_tool)
        elif key == "format" and value not in _FORMATS:
            notes.append(_FORMAT_HINTS.get(str(value), f"Format: {value}."))
        else:
            out[key] = copy.deepcopy(value)
    if fetcher_hint:
        notes.append(_describe_fetcher(node, fetcher_tool))
    notes = [n for n in notes if n]
    base = str(node.get("description") or "")
    if notes and not base:
        base = str(node.get("title") or "")
    description = _join(base, *notes)
    if description:
        out["description"] = description
    return out


def _variant_property(
    name: str,
    definitions: list[tuple[Variant | None, Mapping[str, Any]]],
    variants: list[Variant],
    fetcher_tool: FetcherTool,
) -> dict[str, Any]:
    """One property defined at the root and/or in variants, as one property: keywords
    merged (later definitions win), fetcher hints said per variant when they differ, and
    for a variant-only field which variants take it."""
    merged: dict[str, Any] = {}
    for _, sub in definitions:
        merged.update(sub)
    out: dict[str, Any] = clean(merged, fetcher_tool, fetcher_hint=False)
    hints: dict[str, list[str]] = {}
    for variant, sub in definitions:
        hint = _describe_fetcher(sub, fetcher_tool)
        if hint:
            hints.setdefault(hint, []).append(variant.id if variant else "")
    notes: list[str] = []
    users = [v for v in variants if name in v.properties]
    for hint, where in hints.items():
        if "" in where or len(where) == len(users) == len(definitions):
            notes.append(hint)  # said by the root, or by every variant that has the field
        else:
            ids = ", ".join(repr(w) for w in where if w)
            notes.append(f"With variant {ids}: {hint[0].lower()}{hint[1:]}")
    if not any(v is None for v, _ in definitions):
        needs = [v.id for v in users if name in v.required]
        only = f"Only with variant {', '.join(repr(v.id) for v in users)}"
        notes.append(only + (f" (required with {', '.join(map(repr, needs))})" if needs else ""))
    if notes:
        out["description"] = _join(str(out.get("description") or merged.get("title") or ""), *notes)
    return out


def tool_input_schema(action_schema: Mapping[str, Any], fetcher_tool: FetcherTool) -> ToolSchema:
    """The plain-object tool schema for ``action_schema`` (see the module docstring)."""
    defs = {**action_schema.get("definitions", {}), **action_schema.get("$defs", {})}
    schema: dict[str, Any] = _inline_refs(action_schema, defs)
    root_props: dict[str, Any] = {
        name: clean(sub, fetcher_tool) for name, sub in schema.get("properties", {}).items()
    }
    required = [str(r) for r in schema.get("required", [])]
    notes: list[str] = []
    alternatives = [  # required alternatives: {"anyOf": [{"required": [...]}, ...]}
        " + ".join(str(r) for r in b.get("required", []))
        for b in schema.get("anyOf", [])
        if isinstance(b, Mapping) and b.get("required")
    ]
    if alternatives:
        notes.append(f"Give at least one of: {'; '.join(alternatives)}.")
    if "if" in schema or "dependentSchemas" in schema or "dependentRequired" in schema:
        notes.append("Some fields depend on others; see each field's description.")

    variants: list[Variant] = []
    properties: dict[str, Any] = {}
    branches = [b for b in schema.get("oneOf", []) if isinstance(b, Mapping)]
    if branches:
        seen: set[str] = set()
        for i, branch in enumerate(branches):
            title = str(branch.get("title") or f"variant {i + 1}")
            vid = snake(title) or f"variant_{i + 1}"
            while vid in seen:
                vid = f"{vid}_{i + 1}"
            seen.add(vid)
            names = frozenset(branch.get("properties", {}))
            variants.append(
                Variant(vid, title, names, tuple(str(r) for r in branch.get("required", [])))
            )
        properties[VARIANT] = {
            "type": "string",
            "enum": [v.id for v in variants],
            "description": "Which way of naming the target this call uses: "
            + "; ".join(
                f"'{v.id}' ({v.title.lower()}; needs {', '.join(v.required) or 'nothing more'})"
                for v in variants
            )
            + ". Give only the fields of the chosen variant.",
        }
    properties.update(root_props)
    definitions: dict[str, list[tuple[Variant | None, Mapping[str, Any]]]] = {
        name: [(None, sub)] for name, sub in schema.get("properties", {}).items()
    }
    for variant, branch in zip(variants, branches, strict=True):
        for name, sub in branch.get("properties", {}).items():
            definitions.setdefault(name, []).append((variant, sub))
    for name, defs_of in definitions.items():
        if any(v is not None for v, _ in defs_of):
            properties[name] = _variant_property(name, defs_of, variants, fetcher_tool)
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if variants:
        required = [VARIANT, *required]
    if required:
        out["required"] = required
    if closure(schema) is not None:  # every variant's fields are in one map now
        out["additionalProperties"] = False
    description = _join(str(schema.get("description") or ""), *notes)
    if description:
        out["description"] = description
    return ToolSchema(out, tuple(variants), frozenset(root_props))


def to_action_input(arguments: Mapping[str, Any], tool: ToolSchema) -> dict[str, Any]:
    """Tool arguments as the action's input: ``variant`` (required) taken out, arguments
    the tool does not declare and fields of another variant refused with their names
    (``ValidationError``)."""
    data = dict(arguments)
    declared = tool.schema.get("properties", {})
    if tool.schema.get("additionalProperties") is False:
        unknown = [name for name in data if name not in declared]
        if unknown:
            raise ValidationError(
                f"unknown argument{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}: not declared by the tool's input schema",
                [unknown_field(name, "additionalProperties", list(declared)) for name in unknown],
            )
    if not tool.variants:
        return data
    chosen = data.pop(VARIANT, None)
    ids = [v.id for v in tool.variants]
    if chosen in (None, ""):
        raise ValidationError(
            f"{VARIANT} is required: say which variant this call uses ({', '.join(ids)})",
            [FieldError(VARIANT, f"is required; one of: {', '.join(ids)}", "required")],
        )
    variant = next((v for v in tool.variants if v.id == chosen), None)
    if variant is None:
        raise ValidationError(
            f"unknown variant {chosen!r}",
            [FieldError(VARIANT, f"must be one of {', '.join(ids)}", "enum")],
        )
    foreign = sorted(
        name
        for name in data
        if name not in tool.root_properties
        and name not in variant.properties
        and any(name in v.properties for v in tool.variants)
    )
    if foreign:
        raise ValidationError(
            f"fields {', '.join(foreign)} do not belong to variant {variant.id!r}",
            [
                FieldError(
                    name,
                    "belongs to variant "
                    + ", ".join(repr(v.id) for v in tool.variants if name in v.properties)
                    + f", not {variant.id!r}",
                    "variant",
                )
                for name in foreign
            ],
        )
    missing = [r for r in variant.required if data.get(r) in (None, "")]
    if missing:
        raise ValidationError(
            f"variant {variant.id!r} needs {', '.join(missing)}",
            [
                FieldError(name, f"is required with variant {variant.id!r}", "required")
                for name in missing
            ],
        )
    return data
