"""Action input schemas: load, fill defaults, coerce form strings, pick the variant, validate.

Schemas are JSON Schema draft 2020-12. Strings that arrive from forms and templates are
coerced toward the declared type first ("42" → 42 for an integer, "true" → True for a
boolean), then defaults are filled in, then the result is validated. A top-level
``oneOf`` is a set of variants: exactly one must match; matching none or two is an
error naming the variants.
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


@dataclass
class InputSchema:
    """A compiled input schema; ``prepare`` turns raw input into validated input."""

    schema: dict[str, Any]
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
        return merged

    def prepare(self, raw: Any) -> dict[str, Any]:
        """Coerce, fill defaults and validate ``raw``; raise ``ValidationError`` per field."""
        if not isinstance(raw, Mapping):
            raise ValidationError(
                "input must be a JSON object",
                [FieldError("", f"expected an object, got {type(raw).__name__}", "type")],
            )
        if not self.variants:
            data = prepare_value(self.schema, copy.deepcopy(dict(raw)), self.schema)
            self._raise_errors(self._validator, data)
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
                f"input matches more than one variant ({names}); give the fields of exactly one",
                [FieldError("", f"matches variants {names}", "oneOf")],
            )
        assert best is not None
        raise ValidationError(
            f"input matches none of the variants ({', '.join(map(repr, titles))}); "
            f"closest is {titles[best[0]]!r}",
            best[1],
        )

    @staticmethod
    def _raise_errors(validator: Draft202012Validator, data: Any) -> None:
        errors = _field_errors(validator, data)
        if errors:
            raise ValidationError("input is invalid", errors)


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
        if err.validator == "additionalProperties":
            out.append(FieldError(path, err.message, "additionalProperties"))
            continue
        out.append(FieldError(path, _friendly(err), str(err.validator)))
    return out


def _friendly(err: js_exc.ValidationError) -> str:
    if err.validator == "oneOf":
        return "matches none, or more than one, of the allowed forms"
    return str(err.message)


# --- coercion and defaults -------------------------------------------------


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
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
    schema = _resolve(schema, root)
    types = _types(schema)
    if isinstance(value, str) and types:
        value = _coerce_scalar(value, types)
    if isinstance(value, dict):
        props: Mapping[str, Any] = schema.get("properties", {})
        for name, sub in props.items():
            sub_r = _resolve(sub, root)
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
        node = _resolve(node, schema)
        for name, sub in node.get("properties", {}).items():
            sub_r = _resolve(sub, schema)
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
