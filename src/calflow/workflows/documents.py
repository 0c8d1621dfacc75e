"""Workflow documents, YAML or JSON, loaded within limits.

A document is tenant input parsed on calflow's threads, so before anything is built
from it:

- it is at most ``MAX_DOCUMENT_BYTES`` bytes (UTF-8);
- YAML aliases are followed when nodes are counted: at most ``MAX_NODES`` nodes once
  every alias is expanded (a "billion laughs" document of nested aliases is 279 bytes
  and would be billions of nodes), and an alias may not contain itself;
- it nests at most ``MAX_DEPTH`` levels.

Every limit broken is a ``ValidationError`` (422) naming the limit and the setting;
nothing of the document is echoed beyond a line and column. The YAML loader is a
``SafeLoader`` with YAML 1.2 booleans (only true/false, so a step's ``on:`` stays a
key). Callers on an event loop run these off it (``asyncio.to_thread``).
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from calflow.errors import FieldError, ValidationError

MAX_DOCUMENT_BYTES = 262_144
MAX_NODES = 10_000
MAX_DEPTH = 32


class _TooDeep(Exception):
    pass


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false (so a step's ``on:`` stays a key, not True);
    composing stops at ``MAX_DEPTH`` levels (the composer recurses per level)."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeep
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(  # type: ignore[no-untyped-call]
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _refuse(where: str, rule: str, message: str) -> ValidationError:
    return ValidationError(f"{where} {message}", [FieldError("", message, rule)])


def _check_size(text: str, where: str) -> None:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_DOCUMENT_BYTES:
        raise _refuse(where, "maxBytes", f"is {size:,} bytes (at most {MAX_DOCUMENT_BYTES:,})")


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _count_nodes(root: Node, where: str) -> None:
    """Nodes with every alias expanded, counted without expanding: each distinct node's
    expanded size is computed once (iteratively, in post-order)."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            open_.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > MAX_NODES:
                raise _refuse(where, "maxNodes", f"has more than {MAX_NODES:,} values "
                              "once its aliases are expanded")  # fmt: skip
            continue
        if depth > MAX_DEPTH:
            raise _refuse(where, "maxDepth", f"nests more than {MAX_DEPTH} levels")
        if key in sizes:
            continue
        if key in open_:
            raise _refuse(where, "alias", "has an alias that contains itself")
        open_.add(key)
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in _children(node))


def load_yaml(text: str, where: str = "definition") -> Any:
    """A YAML document (JSON is YAML) within the limits; syntax errors name the line."""
    _check_size(text, where)
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _count_nodes(root, where)
        return loader.construct_document(root)  # type: ignore[no-untyped-call]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValidationError(f"{where} is not valid YAML or JSON{at}: {problem}") from exc
    except (_TooDeep, RecursionError):
        raise _refuse(where, "maxDepth", f"nests more than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()  # type: ignore[no-untyped-call]


def check_depth(value: Any, where: str = "definition") -> None:
    """A loaded document nests at most ``MAX_DEPTH`` levels and holds at most
    ``MAX_NODES`` values."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    count = 0
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise _refuse(where, "maxNodes", f"has more than {MAX_NODES:,} values")
        if depth > MAX_DEPTH:
            raise _refuse(where, "maxDepth", f"nests more than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def load_json(text: str, where: str = "the body") -> Any:
    """A JSON document within the limits."""
    _check_size(text, where)
    try:
        value = json.loads(text)
    except RecursionError:
        raise _refuse(where, "maxDepth", f"nests more than {MAX_DEPTH} levels") from None
    check_depth(value, where)
    return value


__all__ = ["MAX_DEPTH", "MAX_DOCUMENT_BYTES", "MAX_NODES", "check_depth", "load_json", "load_yaml"]
