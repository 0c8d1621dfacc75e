"""Action input schemas: load, fill defaults, coerce form strings, pick the variant, validate.

Schemas are JSON Schema draft 2020-12. Strings that arrive from forms and templates are
coerced toward the declared type first ("42" → 42 for an integer, "true" → True for a
boolean), then defaults are filled in, then the result is validated. A top-level
``oneOf`` is a set of variants: exactly one must match; matching none or two is an
error naming the variants.

Objects are closed: a schema says ``additionalProperties: false`` (or, at a root whose
``oneOf`` variants bring their own properties, ``unevaluatedProperties: false``), and a
field it does not declare is refused by its own path (``attendee.emial``), never
dropped. A field of another variant is unknown to the variant the input matches best,
and its error says which variant it belongs to.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema import exceptions as js_exc

from calflow.errors import ConfigError, FieldError, ValidationError

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def load_schema(package: str, filename: str) -> dict[str, Any]:
    """Read a schema file shipped beside an action's module and check it is a valid schema."""
    try:
        text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"schema file {filename!r} not found in {package}") from exc
    try:
        schema: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{package}/{filename} is not valid JSON: {exc}") from exc
    try:
        Draft202012Validator.check_schema(schema)
    except js_exc.SchemaError as exc:
        raise ConfigError(
            f"{package}/{filename} is not a valid JSON Schema: {exc.message}"
        ) from exc
    return schema


def _path(parts: Iterator[Any] | Any) -> str:
    return ".".join(str(p) for p in parts)


_CLOSURES = ("additionalProperties", "unevaluatedProperties")
_BRANCHES = ("allOf", "anyOf", "oneOf")


def closure(node: Mapping[str, Any]) -> str | None:
    """The keyword that closes an object schema (None: it admits undeclared fields)."""
    return next((k for k in _CLOSURES if node.get(k) is False), None)


def declared_properties(node: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    """The properties ``node`` declares, its composition branches' included (first wins)."""
    node = resolve_ref(node, root)
    out: dict[str, Any] = dict(node.get("properties", {}))
    subs = [b for key in _BRANCHES for b in node.get(key, []) if isinstance(b, Mapping)]
    subs += [node[k] for k in ("then", "else") if isinstance(node.get(k), Mapping)]
    subs += [v for v in node.get("dependentSchemas", {}).values() if isinstance(v, Mapping)]
    for sub in subs:
        for name, prop in declared_properties(sub, root).items():
            out.setdefault(name, prop)
    return out


def unknown_field(path: str, rule: str, known: Iterator[str] | list[str]) -> FieldError:
    """The error for a field the schema does not declare (the same on every surface)."""
    names = ", ".join(sorted(known)) or "none"
    name = path.rpartition(".")[2]
    return FieldError(
        path, f"unknown field {name!r}: not declared ({rule}: false; known: {names})", rule
    )


def _is_object(node: Mapping[str, Any]) -> bool:
    types = _types(node)
    return "object" in types or (not types and "properties" in node)


def open_objects(schema: Mapping[str, Any]) -> list[str]:
    """Where ``schema`` admits fields it does not declare: the dotted path of every object
    (``""`` for the root) that is neither closed nor declared a map (``additionalProperties``
    a schema or ``true``: its keys are data), and of a root closed with
    ``additionalProperties: false`` whose variants bring properties it would then refuse."""
    out: list[str] = []

    def walk(node: Mapping[str, Any], path: str) -> None:
        node = resolve_ref(node, schema)
        extra = node.get("additionalProperties")
        if _is_object(node) and closure(node) is None and extra is None:
            out.append(path)
        own = set(node.get("properties", {}))
        if extra is False and set(declared_properties(node, schema)) - own:
            out.append(path)  # a branch's fields are refused: unevaluatedProperties says it
        for name, sub in declared_properties(node, schema).items():
            walk(sub, f"{path}.{name}" if path else name)
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), Mapping):
                walk(node[key], f"{path}[]" if path else "[]")

    walk(schema, "")
    return out


def _pattern_match(node: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    for pattern, sub in node.get("patternProperties", {}).items():
        if re.search(pattern, name):
            return sub if isinstance(sub, Mapping) else {}
    return None


def undeclared_keys(
    schema: Mapping[str, Any], value: Any, root: Mapping[str, Any], prefix: tuple[Any, ...] = ()
) -> list[FieldError]:
    """Keys of ``value`` (at any depth) that closed objects of ``schema`` do not declare.

    Only the keys are looked at, so values may still be templates: a string where an
    object is declared is not walked into.
    """
    node = resolve_ref(schema, root)
    out: list[FieldError] = []
    if isinstance(value, Mapping):
        props = declared_properties(node, root)
        rule = closure(node)
        extra = node.get("additionalProperties")
        for name, sub_value in value.items():
            sub = props.get(name)
            if sub is None:
                sub = _pattern_match(node, name)
            if sub is None and isinstance(extra, Mapping):
                sub = extra
            if sub is None:
                if rule is not None:
                    out.append(unknown_field(_path([*prefix, name]), rule, list(props)))
                continue
            out += undeclared_keys(sub, sub_value, root, (*prefix, name))
    elif isinstance(value, list) and isinstance(node.get("items"), Mapping):
        for i, item in enumerate(value):
            out += undeclared_keys(node["items"], item, root, (*prefix, i))
    return out


@dataclass
class InputSchema:
    """A compiled input schema; ``prepare`` turns raw input into validated input."""

    schema: dict[str, Any]
    what: str = "input"
    """What the schema describes, as messages name it (``input``, ``context``)."""
    _validator: Draft202012Validator = field(init=False, repr=False)
    _variant_validators: list[Draft202012Validator] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._validator = Draft202012Validator(self.schema, format_checker=_FORMATS)
        self._variant_validators = [
            Draft202012Validator(self._variant_schema(v), format_checker=_FORMATS)
            for v in self.variants
        ]

    @property
    def variants(self) -> list[dict[str, Any]]:
        """The top-level ``oneOf`` branches (empty when the schema has none)."""
        return list(self.schema.get("oneOf", []))

    def variant_titles(self) -> list[str]:
        return [v.get("title", f"variant {i + 1}") for i, v in enumerate(self.variants)]

    def _variant_schema(self, variant: Mapping[str, Any]) -> dict[str, Any]:
        """The root schema with its oneOf replaced by one branch merged in."""
        merged = {k: v for k, v in self.schema.items() if k != "oneOf"}
        props = dict(merged.get("properties", {}))
        props.update(variant.get("properties", {}))
        merged["properties"] = props
        merged["required"] = list(merged.get("required", [])) + [
            r for r in variant.get("required", []) if r not in merged.get("required", [])
        ]
        for key, value in variant.items():
            if key not in ("properties", "required", "title", "description"):
                merged[key] = value
        composed = any(k in merged for k in (*_BRANCHES, "if", "dependentSchemas"))
        if merged.get("unevaluatedProperties") is False and not composed:
            # every property is in one map now: the plain keyword says it (and forms read it)
            del merged["unevaluatedProperties"]
            merged["additionalProperties"] = False
        return merged

    def prepare(self, raw: Any) -> dict[str, Any]:
        """Coerce, fill defaults and validate ``raw``; raise ``ValidationError`` per field."""
        if not isinstance(raw, Mapping):
            raise ValidationError(
                f"{self.what} must be a JSON object",
                [FieldError("", f"expected an object, got {type(raw).__name__}", "type")],
            )
        if not self.variants:
            data = prepare_value(self.schema, copy.deepcopy(dict(raw)), self.schema)
            self._raise_errors(self._validator, data, self.what)
            return dict(data)
        return self._prepare_variants(dict(raw))

    def _prepare_variants(self, raw: dict[str, Any]) -> dict[str, Any]:
        matches: list[tuple[int, dict[str, Any]]] = []
        best: tuple[int, list[FieldError]] | None = None
        for i, validator in enumerate(self._variant_validators):
            candidate = prepare_value(validator.schema, copy.deepcopy(raw), validator.schema)
            errors = _field_errors(validator, candidate)
            if not errors:
                matches.append((i, candidate))
            elif best is None or len(errors) < len(best[1]):
                best = (i, errors)
        titles = self.variant_titles()
        if len(matches) == 1:
            return matches[0][1]
        if len(matches) > 1:
            names = ", ".join(repr(titles[i]) for i, _ in matches)
            raise ValidationError(
                f"{self.what} matches more than one variant ({names}); "
                "give the fields of exactly one",
                [FieldError("", f"matches variants {names}", "oneOf")],
            )
        assert best is not None
        errors = self._name_variants(best[0], best[1])
        if all(e.rule in _CLOSURES for e in errors):
            where = f"{self.what} schema (variant {titles[best[0]]!r})"
            raise ValidationError(_unknown_message(errors, where), errors)
        raise ValidationError(
            f"{self.what} matches none of the variants ({', '.join(map(repr, titles))}); "
            f"closest is {titles[best[0]]!r}",
            errors,
        )

    def _name_variants(self, chosen: int, errors: list[FieldError]) -> list[FieldError]:
        """``errors`` of variant ``chosen``, a top-level field of another variant said so."""
        titles = self.variant_titles()
        out = []
        for e in errors:
            owners = [
                titles[i]
                for i, v in enumerate(self.variants)
                if i != chosen and e.path in v.get("properties", {})
            ]
            if e.rule in _CLOSURES and owners:
                e = FieldError(
                    e.path,
                    f"field {e.path!r} belongs to variant {', '.join(map(repr, owners))}, not "
                    f"{titles[chosen]!r} ({e.rule}: false; give the fields of one variant)",
                    e.rule,
                )
            out.append(e)
        return out

    def undeclared(self, raw: Mapping[str, Any]) -> list[FieldError]:
        """The keys of ``raw`` the schema does not declare, values unchecked (templates).

        With variants, the keys must all fit one variant; else the errors are those of the
        variant that fits best, a field of another variant named as such.
        """
        if not self.variants:
            return undeclared_keys(self.schema, raw, self.schema)
        best: tuple[tuple[int, int], int, list[FieldError]] | None = None
        for i, validator in enumerate(self._variant_validators):
            errors = undeclared_keys(validator.schema, raw, validator.schema)
            if not errors:
                return []
            # fewest unknown keys; on a tie, the variant whose required keys are given
            missing = sum(1 for r in validator.schema.get("required", []) if r not in raw)
            if best is None or (len(errors), missing) < best[0]:
                best = ((len(errors), missing), i, errors)
        assert best is not None
        return self._name_variants(best[1], best[2])

    @staticmethod
    def _raise_errors(validator: Draft202012Validator, data: Any, what: str) -> None:
        errors = _field_errors(validator, data)
        if errors and all(e.rule in _CLOSURES for e in errors):
            raise ValidationError(_unknown_message(errors, f"{what} schema"), errors)
        if errors:
            raise ValidationError(f"{what} is invalid", errors)


def _unknown_message(errors: list[FieldError], where: str) -> str:
    names = ", ".join(repr(e.path) for e in errors)
    noun = "field" if len(errors) == 1 else "fields"
    return f"unknown {noun} {names}: not declared by the {where}"


def _field_errors(validator: Draft202012Validator, data: Any) -> list[FieldError]:
    out: list[FieldError] = []
    for err in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
        path = _path(err.absolute_path)
        if err.validator == "required" and isinstance(err.instance, Mapping):
            # jsonschema reports each missing property as its own error: list each once.
            missing = [r for r in err.validator_value if r not in err.instance]
            for name in missing:
                found = FieldError(_path([*err.absolute_path, name]), "is required", "required")
                if found not in out:
                    out.append(found)
            continue
        if err.validator in _CLOSURES and isinstance(err.instance, Mapping):
            extras = _closure_errors(err, validator.schema)
            out += [f for f in extras if f not in out]
            if extras:
                continue
        out.append(FieldError(path, _friendly(err), str(err.validator)))
    return out


def _closure_errors(err: js_exc.ValidationError, root: Mapping[str, Any]) -> list[FieldError]:
    """One error per undeclared field, at the field's own path (jsonschema names the
    object that holds them)."""
    node = err.schema if isinstance(err.schema, Mapping) else {}
    rule = str(err.validator)
    # additionalProperties sees its own node's properties only; unevaluated ones, branches'
    props = (
        declared_properties(node, root)
        if rule != "additionalProperties"
        else node.get("properties", {})
    )
    extras = [
        name
        for name in err.instance
        if name not in props and _pattern_match(node, str(name)) is None
    ]
    return [unknown_field(_path([*err.absolute_path, n]), rule, list(props)) for n in extras]


def _friendly(err: js_exc.ValidationError) -> str:
    if err.validator == "oneOf":
        return "matches none, or more than one, of the allowed forms"
    return str(err.message)


# --- coercion and defaults -------------------------------------------------


def resolve_ref(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """``schema`` with a local ``$ref`` (``#/$defs/…``) merged in; else ``schema`` itself."""
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    merged = dict(node)
    merged.update({k: v for k, v in schema.items() if k != "$ref"})
    return merged


def _types(schema: Mapping[str, Any]) -> list[str]:
    t = schema.get("type")
    if isinstance(t, str):
        return [t]
    if isinstance(t, list):
        return [str(x) for x in t]
    return []


def _coerce_scalar(value: str, types: list[str]) -> Any:
    text = value.strip()
    if "string" in types:
        return value
    if "integer" in types:
        try:
            return int(text)
        except ValueError:
            pass
    if "number" in types:
        try:
            num = float(text)
        except ValueError:
            pass
        else:
            if math.isfinite(num):  # "nan" and "inf" are not JSON numbers
                return (
                    int(num)
                    if num.is_integer() and "." not in text and "e" not in text.lower()
                    else num
                )
    if "boolean" in types:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
    if "null" in types and text == "":
        return None
    if ("array" in types or "object" in types) and text[:1] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return value
    if "array" in types and text:
        return [part.strip() for part in text.split(",")]
    return value


def prepare_value(schema: Mapping[str, Any], value: Any, root: Mapping[str, Any]) -> Any:
    """Coerce ``value`` toward ``schema`` and fill object defaults (recursively)."""
    schema = resolve_ref(schema, root)
    types = _types(schema)
    if isinstance(value, str) and types:
        value = _coerce_scalar(value, types)
    if isinstance(value, dict):
        props: Mapping[str, Any] = schema.get("properties", {})
        for name, sub in props.items():
            sub_r = resolve_ref(sub, root)
            if name in value:
                value[name] = prepare_value(sub_r, value[name], root)
            elif "default" in sub_r:
                value[name] = copy.deepcopy(sub_r["default"])
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            for name in value:
                if name not in props:
                    value[name] = prepare_value(extra, value[name], root)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            value = [prepare_value(items, v, root) for v in value]
    return value


def iter_fields(schema: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every (dotted path, property schema) in the schema, variants and ``$defs`` included."""

    def walk(node: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
        node = resolve_ref(node, schema)
        for name, sub in node.get("properties", {}).items():
            sub_r = resolve_ref(sub, schema)
            path = f"{prefix}{name}"
            yield path, sub_r
            yield from walk(sub_r, path + ".")
            if isinstance(sub_r.get("items"), Mapping):
                yield from walk(sub_r["items"], path + "[].")
        for key in ("oneOf", "anyOf", "allOf"):
            for branch in node.get(key, []):
                yield from walk(branch, prefix)

    yield from walk(schema, "")


_FORMATS = FormatChecker(formats=())
# fromisoformat also takes ISO week dates and the compact form; RFC 3339 takes neither.
_RFC3339_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z", re.ASCII)


def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value)
    return (
        bool(_RFC3339_DATE.match(value[:10]))
        and value[10:11] in ("T", "t")
        and parsed.tzinfo is not None
    )


def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    date.fromisoformat(value)
    return bool(_RFC3339_DATE.match(value))


def _is_email(value: object) -> bool:
    if not isinstance(value, str):
        return True
    local, _, domain = value.rpartition("@")
    return bool(local) and "." in domain and " " not in value


def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme) and bool(parts.netloc or parts.path)


def _is_time_zone(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return value in _zones()


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


_FORMATS.checks("date-time", raises=ValueError)(_is_datetime)
_FORMATS.checks("date", raises=ValueError)(_is_date)
_FORMATS.checks("email")(_is_email)
_FORMATS.checks("uri")(_is_uri)
_FORMATS.checks("time-zone")(_is_time_zone)
