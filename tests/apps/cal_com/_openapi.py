"""Checks recorded HTTP requests against Cal.com's OpenAPI 3.0 spec (API v2).

What a request must satisfy (each failure names the operation and the problem):

- its path, below the base URL, matches one of the spec's path templates, and the
  method exists for it;
- every required header parameter is present; ``cal-api-version`` equals exactly the
  ``default`` the spec names for that operation, and is absent where the operation
  declares no such header; a required ``Authorization`` is ``Bearer <token>``;
- every query parameter is declared by the operation, required ones are present, and
  values conform to the parameter schema (arrays as comma lists, as Cal.com reads them);
- the JSON body validates against the operation's ``requestBody`` schema, ``$ref``\\s
  resolved through a ``referencing`` registry; a body is sent only where the operation
  takes one.

Adjustments to the spec file, each for a stated reason (see ``prepare_spec``):

- PROVIDERS.md erratum: ``CreateWebhookInputDto.triggers`` / ``UpdateWebhookInputDto
  .triggers`` are arrays of the declared enum, not one string.
- OpenAPI 3.0 ``nullable: true`` becomes ``null`` in the allowed types.
- NestJS emits the alternative DTOs of one endpoint (regular / instant / recurring
  booking; regular / seated reschedule and cancel) as a top-level ``oneOf`` whose
  branches overlap (no ``additionalProperties: false``): a regular booking body matches
  both the regular and the recurring DTO. The top-level ``oneOf`` of a request body is
  therefore checked as ``anyOf``. Nested ``oneOf``\\s stay strict.
- Location DTOs say "only allowed value for type is `address`" in prose; that becomes
  ``enum: ["address"]``, which makes the ``location`` ``oneOf`` discriminating.
- Constraints the spec states only in prose: booking ``start`` in UTC (``…Z``),
  ``attendee.phoneNumber`` in E.164 (PROVIDERS.md: SMS reminders need it), slots
  ``format`` is ``time`` | ``range``, ``duration`` and ``eventTypeId`` are numbers,
  ``usernames`` is a comma list of at least two, ``start`` / ``end`` are a date or a
  UTC instant ("Must be in UTC timezone as ISO 8601 datestring").
- Any ``Authorization`` header (declared or not) must be ``Bearer <token>``: an empty
  one is not valid HTTP (RFC 7235) and not what Cal.com reads.
- ``POST /v2/bookings/{bookingUid}/guests`` is newer than the spec; it is checked
  against PROVIDERS.md (version ``2024-08-13``, body ``{guests: [{email, name?,
  timeZone?, phoneNumber?, language?}]}``, at most 10).
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError as SchemaError
from referencing import Registry
from referencing.jsonschema import DRAFT4

SPEC_ENV = "CALFLOW_CALCOM_OPENAPI"
# A copy of shared/reference/calcom-openapi-v2.json kept in the repo, so CI needs nothing else.
DEFAULT_SPEC = Path(__file__).resolve().parents[2] / "data" / "calcom-openapi-v2.json"
URN = "urn:calcom:openapi-v2"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
VERSION_HEADER = "cal-api-version"
UTC_INSTANT = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?Z$"
UTC_DAY_OR_INSTANT = r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?Z)?$"
E164 = r"^\+[1-9]\d{6,14}$"
_ONLY_TYPE = re.compile(r"only allowed value for type is `([^`]+)`")

GUESTS_PATH = "/v2/bookings/{bookingUid}/guests"
GUESTS_OPERATION: dict[str, Any] = {
    "operationId": "PROVIDERS.md: add guests",
    "x-source": "PROVIDERS.md (newer than the spec file)",
    "parameters": [
        {"name": "bookingUid", "in": "path", "required": True, "schema": {"type": "string"}},
        {
            "name": VERSION_HEADER,
            "in": "header",
            "required": True,
            "schema": {"type": "string", "default": "2024-08-13"},
        },
        {"name": "Authorization", "in": "header", "required": True, "schema": {"type": "string"}},
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["guests"],
                    "additionalProperties": False,
                    "properties": {
                        "guests": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 10,
                            "items": {
                                "type": "object",
                                "required": ["email"],
                                "additionalProperties": False,
                                "properties": {
                                    "email": {"type": "string", "minLength": 3},
                                    "name": {"type": "string"},
                                    "timeZone": {"type": "string"},
                                    "phoneNumber": {"type": "string", "pattern": E164},
                                    "language": {"type": "string"},
                                },
                            },
                        }
                    },
                }
            }
        },
    },
}


class Nonconformance(AssertionError):
    """A request that does not conform to the spec; the message says where and why."""


def spec_file() -> Path:
    return Path(os.environ.get(SPEC_ENV) or DEFAULT_SPEC)


def load_spec(path: Path | None = None) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((path or spec_file()).read_text(encoding="utf-8"))
    return data


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _nullable(schema: dict[str, Any]) -> None:
    if schema.pop("nullable", False) is not True:
        return
    kind = schema.get("type")
    if isinstance(kind, str):
        schema["type"] = [kind, "null"]
    if "enum" in schema and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]
    if kind is None:
        rest = {k: schema.pop(k) for k in list(schema)}
        schema["anyOf"] = [{"type": "null"}, rest]


def prepare_spec(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the spec with the adjustments listed in the module docstring."""
    spec = copy.deepcopy(dict(raw))
    schemas = spec["components"]["schemas"]
    # PROVIDERS.md erratum: triggers is an array of the enum.
    for name in ("CreateWebhookInputDto", "UpdateWebhookInputDto"):
        single = schemas[name]["properties"]["triggers"]
        assert single.get("type") == "string", f"{name}.triggers changed in the spec: recheck"
        schemas[name]["properties"]["triggers"] = {"type": "array", "items": single}
    # Prose-only constraints.
    for name in (
        "CreateBookingInput_2024_08_13",
        "CreateInstantBookingInput_2024_08_13",
        "CreateRecurringBookingInput_2024_08_13",
        "RescheduleBookingInput_2024_08_13",
        "RescheduleSeatedBookingInput_2024_08_13",
    ):
        schemas[name]["properties"]["start"]["pattern"] = UTC_INSTANT
    schemas["CreateBookingAttendee"]["properties"]["phoneNumber"]["pattern"] = E164
    slots = spec["paths"]["/v2/slots"]["get"]["parameters"]
    prose = {
        "format": {"type": "string", "enum": ["time", "range"]},
        "duration": {"type": "number", "minimum": 1},
        "eventTypeId": {"type": "number"},
        "usernames": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        "start": {"type": "string", "pattern": UTC_DAY_OR_INSTANT},
        "end": {"type": "string", "pattern": UTC_DAY_OR_INSTANT},
    }
    for param in slots:
        if param["name"] in prose:
            param["schema"] = prose[param["name"]]
    for node in list(_walk(spec)):
        _nullable(node)
        props = node.get("properties")
        kind = props.get("type") if isinstance(props, dict) else None
        if isinstance(kind, dict) and kind.get("type") == "string" and "enum" not in kind:
            found = _ONLY_TYPE.search(str(kind.get("description", "")))
            if found:
                kind["enum"] = [found.group(1)]
    # Alternative DTOs of one endpoint overlap: check the top-level oneOf as anyOf.
    for ops in spec["paths"].values():
        for method, op in ops.items():
            if method not in METHODS:
                continue
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            if "oneOf" in body.get("schema", {}):
                body["schema"] = {"anyOf": body["schema"]["oneOf"]}
    assert GUESTS_PATH not in spec["paths"], "the spec now has /guests: drop the PROVIDERS.md copy"
    spec["paths"][GUESTS_PATH] = {"post": GUESTS_OPERATION}
    return spec


def _pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _message(error: SchemaError) -> str:
    """The error's message with a long instance shortened (the rule stays readable)."""
    shown = repr(error.instance)
    return error.message.replace(shown, _short(shown, 60)) if len(shown) > 60 else error.message


def _format_error(error: SchemaError) -> str:
    """``$.path: message``; for ``anyOf``/``oneOf`` the errors of every alternative."""
    if error.validator not in ("anyOf", "oneOf") or not error.context:
        return f"{error.json_path}: {_short(_message(error), 300)}"
    branches: dict[int, list[str]] = {}
    for sub in error.context:
        index = int(sub.relative_schema_path[0])
        branches.setdefault(index, []).append(f"{sub.json_path}: {_short(_message(sub), 200)}")
    parts = "; ".join(
        f"alternative {i + 1}: " + ", ".join(found[:3]) for i, found in sorted(branches.items())
    )
    return f"{error.json_path}: matches none of the {error.validator} alternatives ({parts})"


@dataclass(frozen=True)
class Matched:
    template: str
    method: str
    operation: dict[str, Any]
    path_params: dict[str, str]

    @property
    def name(self) -> str:
        op_id = self.operation.get("operationId", "?")
        return f"{self.method.upper()} {self.template} ({op_id})"


class SpecValidator:
    """Validates ``httpx.Request``\\s sent to ``base_url`` against the (prepared) spec."""

    def __init__(self, spec: Mapping[str, Any], base_url: str) -> None:
        self.spec = prepare_spec(spec)
        self.base_path = httpx.URL(base_url).path.rstrip("/")
        self.base_host = httpx.URL(base_url).host
        resource = DRAFT4.create_resource(self.spec)
        self.registry: Registry[Any] = Registry().with_resource(URN, resource)
        self._templates = []
        for template in self.spec["paths"]:
            regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
            literal = len(re.sub(r"\{\w+\}", "", template))
            self._templates.append((literal, template, re.compile(regex)))
        self._templates.sort(key=lambda t: -t[0])

    def _validator(self, pointer: str) -> Draft4Validator:
        return Draft4Validator({"$ref": f"{URN}#{pointer}"}, registry=self.registry)

    def schema_errors(self, pointer: str, value: Any) -> list[str]:
        return [_format_error(e) for e in self._validator(pointer).iter_errors(value)]

    def match(self, request: httpx.Request) -> Matched:
        path = request.url.path
        if request.url.host != self.base_host or not path.startswith(self.base_path + "/"):
            raise Nonconformance(f"{request.method} {request.url}: not below the base URL")
        path = path[len(self.base_path) :]
        for _, template, regex in self._templates:
            found = regex.fullmatch(path)
            if found is None:
                continue
            ops = self.spec["paths"][template]
            method = request.method.lower()
            if method not in ops:
                declared = sorted(m.upper() for m in ops if m in METHODS)
                raise Nonconformance(
                    f"{request.method} {path}: the spec has {template} only for {declared}"
                )
            return Matched(template, method, ops[method], found.groupdict())
        raise Nonconformance(f"{request.method} {path}: no path of the spec matches")

    def problems(self, request: httpx.Request) -> tuple[Matched, list[str]]:
        """The operation a request is for, and everything wrong with it."""
        matched = self.match(request)
        op = matched.operation
        base = _pointer("paths", matched.template, matched.method)
        params = op.get("parameters", [])
        out: list[str] = []
        # Headers.
        headers = {p["name"].lower(): (i, p) for i, p in enumerate(params) if p["in"] == "header"}
        for name, (_, param) in headers.items():
            value = request.headers.get(name)
            if value is None:
                if param.get("required"):
                    out.append(f"header {param['name']!r} is required and missing")
                continue
            if name == VERSION_HEADER:
                expected = param.get("schema", {}).get("default")
                if value != expected:
                    out.append(f"header {VERSION_HEADER}: {value!r}, the spec names {expected!r}")
        auth = request.headers.get("authorization")
        if auth is not None and not re.fullmatch(r"Bearer \S+", auth):
            # Declared or not: RFC 7235 has no empty credentials, and Cal.com reads Bearer.
            out.append(f"header Authorization: {auth!r} is not 'Bearer <token>'")
        if VERSION_HEADER not in headers and VERSION_HEADER in request.headers:
            out.append(
                f"header {VERSION_HEADER}: {request.headers[VERSION_HEADER]!r} sent, but the "
                "operation declares no version header"
            )
        # Path parameters.
        for i, param in enumerate(params):
            if param["in"] == "path":
                value = matched.path_params.get(param["name"])
                if value is None:
                    out.append(f"path parameter {param['name']!r} is not in the template")
                    continue
                ptr = base + _pointer("parameters", str(i), "schema")
                out += [f"path {param['name']}: {e}" for e in self.schema_errors(ptr, value)]
        # Query parameters.
        query = {p["name"]: (i, p) for i, p in enumerate(params) if p["in"] == "query"}
        sent = request.url.params
        for name in sent:
            if name not in query:
                out.append(f"query {name!r} is not a parameter of the operation")
        for name, (i, param) in query.items():
            values = sent.get_list(name)
            if not values:
                if param.get("required"):
                    out.append(f"query {name!r} is required and missing")
                continue
            schema = param.get("schema", {})
            ptr = base + _pointer("parameters", str(i), "schema")
            if schema.get("type") == "array":
                items = [v for value in values for v in value.split(",")]
                value_of: Any = [_coerce(v, schema.get("items", {})) for v in items]
            elif len(values) > 1:
                out.append(f"query {name!r} is sent {len(values)} times")
                continue
            else:
                value_of = _coerce(values[0], schema)
            out += [f"query {name}={values}: {e}" for e in self.schema_errors(ptr, value_of)]
        # Body.
        content = request.content
        body_spec = op.get("requestBody")
        if body_spec is None:
            if content:
                out.append(f"a body is sent ({content[:80]!r}) but the operation takes none")
            return matched, out
        if not content:
            if body_spec.get("required"):
                out.append("the operation requires a JSON body; none is sent")
            return matched, out
        ctype = request.headers.get("content-type", "").split(";")[0].strip()
        if ctype not in body_spec.get("content", {}):
            out.append(f"content type {ctype!r} is not one of {sorted(body_spec['content'])}")
            return matched, out
        try:
            body = json.loads(content)
        except ValueError as exc:
            out.append(f"the body is not JSON: {exc}")
            return matched, out
        ptr = base + _pointer("requestBody", "content", ctype, "schema")
        out += [f"body {e}" for e in self.schema_errors(ptr, body)]
        return matched, out

    def check(self, request: httpx.Request) -> Matched:
        """The operation a request is for; ``Nonconformance`` naming it and every problem."""
        matched, problems = self.problems(request)
        if problems:
            lines = "\n  - ".join(problems)
            raise Nonconformance(f"{matched.name}: {request.url}\n  - {lines}")
        return matched


def _coerce(value: str, schema: Mapping[str, Any]) -> Any:
    """A query string value as the type its schema declares (left as is when it is not)."""
    kind = schema.get("type")
    if kind in ("number", "integer"):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() else number
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    return value
