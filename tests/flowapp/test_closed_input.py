"""Closed schemas: undeclared fields refused by their own path, oneOf variants minded,
and a fetcher's context coerced and validated against its declared schema."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from calflow.errors import ValidationError
from calflow.flowapp import ActionContext, App, DataFetcher, InputSchema, Option, Registry
from calflow.flowapp.runner import Runner
from calflow.flowapp.schema import open_objects

from .fixture_app.actions import Contact, Echo

NESTED = InputSchema(
    {
        "type": "object",
        "properties": {
            "who": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "additionalProperties": False,
            },
            "guests": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"email": {"type": "string"}},
                    "additionalProperties": False,
                },
            },
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "extra": {"type": "object", "additionalProperties": True},
            "codes": {"type": "object", "patternProperties": {"^x-": {"type": "integer"}},
                      "additionalProperties": False},
        },
        "additionalProperties": False,
    }
)  # fmt: skip


def _refused(schema: InputSchema, data: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as err:
        schema.prepare(data)
    return [(e.path, e.rule) for e in err.value.errors]


def test_undeclared_fields_are_refused_at_their_own_path_at_any_depth() -> None:
    data = {"who": {"name": "Ada", "nmae": "x"}, "guests": [{"email": "a"}, {"emial": "b"}],
            "labels": {"any": "key"}, "extra": {"free": {"form": 1}},
            "codes": {"x-a": 1, "y": 2}, "top": 1}  # fmt: skip
    assert sorted(_refused(NESTED, data)) == [
        ("codes.y", "additionalProperties"),
        ("guests.1.emial", "additionalProperties"),
        ("top", "additionalProperties"),
        ("who.nmae", "additionalProperties"),
    ]
    with pytest.raises(ValidationError) as err:
        NESTED.prepare({"top": 1})
    assert err.value.message == "unknown field 'top': not declared by the input schema"
    assert err.value.errors[0].message.startswith("unknown field 'top': not declared")
    # the key-only walk finds the same, and does not walk into a template
    assert sorted(e.path for e in NESTED.undeclared(data)) == [
        "codes.y", "guests.1.emial", "top", "who.nmae",
    ]  # fmt: skip
    assert NESTED.undeclared({"who": "{{ attendee }}", "guests": "{{ guests }}"}) == []


def test_a_field_of_another_variant_is_unknown_to_the_variant_that_fits_best() -> None:
    schema = Contact.input_schema()
    merged = schema._variant_validators[0].schema
    assert merged["additionalProperties"] is False and "unevaluatedProperties" not in merged
    with pytest.raises(ValidationError) as err:
        schema.prepare({"email": "a@example.com", "sms": True})
    ((error),) = err.value.errors
    assert (error.path, error.rule) == ("sms", "additionalProperties")
    assert "belongs to variant 'By phone', not 'By email'" in error.message
    assert "variant 'By email'" in err.value.message
    assert [e.path for e in schema.undeclared({"phone": "{{ p }}", "channel": "x"})] == ["channel"]
    assert schema.undeclared({"phone": "{{ p }}", "note": "{{ n }}"}) == []


def test_open_objects_are_the_ones_neither_closed_nor_declared_maps() -> None:
    assert open_objects(NESTED.schema) == []
    assert open_objects(Echo.input_schema().schema) == []
    assert open_objects(
        {"type": "object", "properties": {"a": {"type": "object", "properties": {}}}}
    ) == ["", "a"]
    # closed with additionalProperties while variants bring properties: they would be refused
    assert open_objects(
        {"type": "object", "additionalProperties": False, "oneOf": [{"properties": {"b": {}}}]}
    ) == [""]


class Count(DataFetcher):
    key = "count"
    name = "Count"
    depends_on = ("n",)
    context = {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "tag": {"type": "string", "default": "t"}},
        "required": ["n"],
        "additionalProperties": False,
    }

    async def fetch(self, ctx: ActionContext, context: Mapping[str, Any]) -> list[Option]:
        return [Option(context["n"], f"{type(context['n']).__name__} {context['tag']}")]


class Undeclared(DataFetcher):
    key = "undeclared"
    name = "No context schema"
    depends_on = ("a",)

    async def fetch(self, ctx: ActionContext, context: Mapping[str, Any]) -> list[Option]:
        return [Option(context["a"], "a")]


PROBE = App("probe", "Probe", "Fetchers only.", fetchers=(Count, Undeclared))


async def test_fetcher_context_is_coerced_validated_and_closed() -> None:
    async with Runner(Registry([PROBE]), publish=False) as runner:
        (option,) = await runner.fetch_options("probe", "count", None, {"n": "123"})
        assert (option.value, option.label) == (123, "int t")
        for context, path, rule in [
            ({"n": {"x": 1}}, "n", "type"),
            ({"n": 1, "zz": 2}, "zz", "additionalProperties"),
            ({"n": 1, "zz": ""}, "zz", "additionalProperties"),  # blank, still unknown
            ({"n": ""}, "n", "required"),
        ]:
            with pytest.raises(ValidationError) as err:
                await runner.fetch_options("probe", "count", None, context)
            assert [(e.path, e.rule) for e in err.value.errors] == [(path, rule)], context
        # no declared context: a closed object of its depends_on fields
        assert PROBE.problems() == []
        with pytest.raises(ValidationError) as err:
            await runner.fetch_options("probe", "undeclared", None, {"a": 1, "b": 2})
        assert [e.path for e in err.value.errors] == ["b"]
