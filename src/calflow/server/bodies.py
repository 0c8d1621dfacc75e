"""What a webhook body may hold before calflow stores it: JSON that every later reader can take.

A signed delivery is still input from the network, and the inbox keeps it for good:
the API and the CLI print it, the dispatcher and the engine parse it, PostgreSQL's
JSONB and text columns must accept it. :func:`parse_body` parses the raw bytes with the
standard library's ``json`` and then walks the document once (iteratively: no
recursion to exhaust), refusing what one of those readers cannot handle:

=====================  ==========================================================
body                   UTF-8 (no BOM), at most ``CALFLOW_WEBHOOK_MAX_BYTES``
                       (1 MiB by default, checked before parsing: 413)
nesting                at most :data:`MAX_DEPTH` (32) arrays/objects deep
strings (and keys)     at most :data:`MAX_STRING` (65,536) characters; no NUL
                       (``\\u0000``: PostgreSQL refuses it in JSON and text); no
                       lone surrogate (``"\\ud800"``: it has no UTF-8 form)
numbers                ``NaN``, ``Infinity``, ``-Infinity`` are not JSON (400);
                       a float that overflows to infinity (``1e400``) and an
                       integer of more than :data:`MAX_INT_DIGITS` (64) digits
                       are refused (Python refuses to print one of 4,300)
=====================  ==========================================================

Anything refused raises :class:`BodyError`, which names the problem and where it is
(a dotted path such as ``payload.attendees[0].name``); nothing is stripped or
rewritten, so what is stored is exactly what was signed. Dates are not checked here:
the normalizers read a date outside the years 1000-9999 as unusable (``None``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, NoReturn

__all__ = [
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "MAX_STRING",
    "BodyError",
    "parse_body",
    "readable",
]

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects (Cal.com's deepest is about 5)."""
MAX_STRING = 65_536
"""Longest string or key, in characters."""
MAX_INT_DIGITS = 64
"""Longest integer, in digits (sign not counted)."""

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_LONE = re.compile("[\ud800-\udfff]")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


@dataclass
class BodyError(Exception):
    """A body calflow will not store: ``status`` 400 (not JSON) or 422 (JSON it refuses)."""

    status: int
    code: str
    message: str
    path: str | None = None
    """Where in the body (dotted path; ``""`` is the body itself), when known."""

    def __str__(self) -> str:
        return self.message


class _NotJson:
    """A ``NaN`` / ``Infinity`` literal, kept in place so the walk can say where it was."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _BigInt:
    """An integer literal too long to convert, kept in place for the same reason."""

    __slots__ = ("digits",)

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))


def _int_or_marker(text: str) -> int | _BigInt:
    return _BigInt(text) if len(text.lstrip("-")) > MAX_INT_DIGITS else int(text)


def parse_body(raw: bytes) -> Any:
    """The JSON document in ``raw``, or :class:`BodyError` naming what is wrong and where."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(
            400, "BAD_JSON", f"the body is not UTF-8 (invalid byte at offset {exc.start})"
        ) from None
    try:
        doc = json.loads(text, parse_constant=_NotJson)
    except RecursionError:
        raise _too_deep(_depth_offset(text)) from None
    except ValueError as exc:
        if "integer string conversion" not in str(exc):
            raise BodyError(400, "BAD_JSON", f"the body is not JSON: {exc}") from None
        # an integer of thousands of digits: parse again, marking it, to say where it is
        doc = json.loads(text, parse_constant=_NotJson, parse_int=_int_or_marker)
    _check(doc, surrogates=_SURROGATE_ESCAPE.search(raw) is not None)
    return doc


def _too_deep(offset: int | None) -> BodyError:
    where = f" (at character {offset})" if offset is not None else ""
    problem = f"nested deeper than {MAX_DEPTH} levels of arrays and objects{where}"
    return BodyError(422, "TOO_DEEP", f"the body: {problem}", "")


def _depth_offset(text: str) -> int | None:
    """Where nesting first goes past :data:`MAX_DEPTH` (only used on the refusal path)."""
    depth = 0
    for match in _TOKENS.finditer(text):
        mark = match.group()
        if mark in ("[", "{"):
            depth += 1
            if depth > MAX_DEPTH:
                return match.start()
        elif mark in ("]", "}"):
            depth -= 1
    return None


_Path = tuple[Any, str | int] | None
"""A node's place as (parent's place, key or index): built cheaply, rendered on refusal."""


def _render(path: _Path) -> str:
    parts: list[str | int] = []
    while path is not None:
        path, key = path
        parts.append(key)
    out = ""
    for key in reversed(parts):
        if isinstance(key, int):
            out += f"[{key}]"
        elif _IDENT.fullmatch(key):
            out += f".{key}" if out else key
        else:  # quoted and ASCII-escaped: a hostile key cannot break the error answer
            shown = json.dumps(key if len(key) <= 64 else key[:64] + "…")
            out += f"[{shown}]"
    return out


def _refuse(
    path: _Path, problem: str, code: str = "UNSUPPORTED_VALUE", status: int = 422
) -> NoReturn:
    rendered = _render(path)
    raise BodyError(status, code, f"{rendered or 'the body'}: {problem}", rendered)


def _check_string(value: str, path: _Path, surrogates: bool, what: str) -> None:
    if len(value) > MAX_STRING:
        _refuse(path, f"a {what} of {len(value)} characters (the limit is {MAX_STRING})")
    if "\x00" in value:
        _refuse(path, f"a {what} with a NUL character (\\u0000), which calflow cannot store")
    if surrogates and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            _refuse(path, f"a {what} with a lone surrogate (\\ud800-\\udfff), which is no text")


def _check(doc: Any, surrogates: bool) -> None:
    """Walk ``doc`` once, refusing the first value a later reader could not handle.

    ``surrogates``: the body has a ``\\uD8xx``-style escape, so strings may hold a lone
    surrogate (valid pairs become one character; raw bytes were checked as UTF-8).
    """
    stack: list[tuple[Any, int, _Path]] = [(doc, 1, None)]
    while stack:
        value, depth, path = stack.pop()
        kind = type(value)
        if kind is str:
            _check_string(value, path, surrogates, "string")
        elif kind is dict:
            if depth > MAX_DEPTH:
                raise _nested(path)
            for key, item in value.items():
                here = (path, key)
                _check_string(key, here, surrogates, "key")
                stack.append((item, depth + 1, here))
        elif kind is list:
            if depth > MAX_DEPTH:
                raise _nested(path)
            stack.extend((item, depth + 1, (path, n)) for n, item in enumerate(value))
        elif kind is float:
            if not math.isfinite(value):
                _refuse(path, "a number too large for a double (it overflows to infinity)")
        elif kind is int:
            if value.bit_length() > 212 and len(str(abs(value))) > MAX_INT_DIGITS:
                _refuse(path, f"an integer of more than {MAX_INT_DIGITS} digits")
        elif kind is _NotJson:
            _refuse(path, f"{value.text}, which is not JSON", "BAD_JSON", 400)
        elif kind is _BigInt:
            _refuse(path, f"an integer of {value.digits} digits (the limit is {MAX_INT_DIGITS})")


def _nested(path: _Path) -> BodyError:
    rendered = _render(path)
    problem = f"nested deeper than {MAX_DEPTH} levels of arrays and objects"
    return BodyError(422, "TOO_DEEP", f"{rendered or 'the body'}: {problem}", rendered)


def readable(value: Any, depth: int = 0) -> Any:
    """``value`` made printable by any JSON reader, for documents stored before these
    checks existed: lone surrogates become U+FFFD, NUL is dropped, ``NaN`` / infinities
    become ``null``, nesting past :data:`MAX_DEPTH` becomes the string ``"…"``.

    Returns ``value`` itself (no copy) when there is nothing to change.
    """
    if isinstance(value, str):
        if value.isascii():
            return value.replace("\x00", "") if "\x00" in value else value
        return _LONE.sub("\ufffd", value).replace("\x00", "")
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict | list):
        if depth >= MAX_DEPTH + 8:  # the wrappers the API adds around a document
            return "…"
        if isinstance(value, list):
            items = [readable(v, depth + 1) for v in value]
            return value if all(a is b for a, b in zip(items, value, strict=True)) else items
        pairs = [(readable(k, depth), readable(v, depth + 1)) for k, v in value.items()]
        old = value.items()
        same = all(k is a and v is b for (k, v), (a, b) in zip(pairs, old, strict=True))
        return value if same else dict(pairs)
    return value
