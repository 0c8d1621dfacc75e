"""calflow.flowapp.schema: coercion, defaults, validation, oneOf variants, formats, fields."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calflow.errors import ConfigError, FieldError, ValidationError
from calflow.flowapp.schema import InputSchema, iter_fields, load_schema

from .fixture_app.actions import Contact, Echo

PKG = "flowapp.fixture_app"


def _schema(props: dict[str, Any], **extra: Any) -> InputSchema:
    return InputSchema({"type": "object", "properties": props, **extra})


def _errors(schema: InputSchema, raw: Any) -> list[FieldError]:
    with pytest.raises(ValidationError) as info:
        schema.prepare(raw)
    return info.value.errors


# --- coercion of form strings ---------------------------------------------------------


@pytest.mark.parametrize(
    ("typ", "text", "expected"),
    [
        ("integer", "42", 42),
        ("integer", " 7 ", 7),
        ("integer", "-3", -3),
        ("number", "4.5", 4.5),
        ("number", "42", 42),
        ("number", "1e3", 1000.0),
        ("number", "-0.25", -0.25),
        ("boolean", "true", True),
        ("boolean", "TRUE", True),
        ("boolean", "on", True),
        ("boolean", "yes", True),
        ("boolean", "1", True),
        ("boolean", "false", False),
        ("boolean", "off", False),
        ("boolean", "no", False),
        ("boolean", "0", False),
        ("string", "42", "42"),
        (["integer", "null"], "", None),
        (["integer", "null"], "5", 5),
    ],
)
def test_scalar_strings_are_coerced_to_the_declared_type(
    typ: str | list[str], text: str, expected: Any
) -> None:
    out = _schema({"v": {"type": typ}}).prepare({"v": text})
    assert out["v"] == expected
    assert type(out["v"]) is type(expected)


def test_number_coercion_keeps_integers_integral_and_fractions_float() -> None:
    out = _schema({"a": {"type": "number"}, "b": {"type": "number"}}).prepare(
        {"a": "3", "b": "3.0"}
    )
    assert out == {"a": 3, "b": 3.0}
    assert type(out["a"]) is int
    assert type(out["b"]) is float


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-Infinity"])
def test_non_finite_numbers_are_not_coerced(text: str) -> None:
    errors = _errors(_schema({"n": {"type": "number"}}), {"n": text})
    assert [(e.path, e.rule) for e in errors] == [("n", "type")]


@pytest.mark.parametrize(
    ("typ", "text"),
    [("integer", "4.5"), ("integer", "forty"), ("boolean", "maybe"), ("number", "")],
)
def test_uncoercible_strings_fail_validation_on_type(typ: str, text: str) -> None:
    errors = _errors(_schema({"v": {"type": typ}}), {"v": text})
    assert [(e.path, e.rule) for e in errors] == [("v", "type")]


def test_non_string_values_are_left_alone() -> None:
    schema = _schema({"n": {"type": "integer"}, "b": {"type": "boolean"}})
    assert schema.prepare({"n": 5, "b": False}) == {"n": 5, "b": False}
    assert [e.rule for e in _errors(schema, {"n": True})] == ["type"]


def test_json_text_becomes_arrays_and_objects_then_items_are_coerced() -> None:
    schema = _schema(
        {
            "ids": {"type": "array", "items": {"type": "integer"}},
            "meta": {
                "type": "object",
                "properties": {"size": {"type": "integer"}, "kind": {"default": "x"}},
            },
        }
    )
    out = schema.prepare({"ids": "[1, 2, 3]", "meta": '{"size": "9"}'})
    assert out == {"ids": [1, 2, 3], "meta": {"size": 9, "kind": "x"}}


def test_comma_lists_become_arrays_with_items_coerced() -> None:
    schema = _schema(
        {
            "tags": {"type": "array", "items": {"type": "string"}},
            "ids": {"type": "array", "items": {"type": "integer"}},
        }
    )
    assert schema.prepare({"tags": "a, b ,c", "ids": "1,2"}) == {
        "tags": ["a", "b", "c"],
        "ids": [1, 2],
    }
    assert schema.prepare({"tags": "solo"}) == {"tags": ["solo"]}


def test_broken_json_for_an_object_is_a_type_error_not_a_crash() -> None:
    errors = _errors(_schema({"meta": {"type": "object"}}), {"meta": "{not json"})
    assert [(e.path, e.rule) for e in errors] == [("meta", "type")]


def test_additional_properties_schema_coerces_extra_fields() -> None:
    schema = InputSchema({"type": "object", "additionalProperties": {"type": "integer"}})
    assert schema.prepare({"a": "1", "b": "2"}) == {"a": 1, "b": 2}


def test_prepare_does_not_mutate_the_raw_input() -> None:
    raw = {"name": "Ada", "tags": "a,b", "attendee": {"name": "Bo"}}
    Echo.input_schema().prepare(raw)
    assert raw == {"name": "Ada", "tags": "a,b", "attendee": {"name": "Bo"}}


# --- defaults -------------------------------------------------------------------------


def test_defaults_are_filled_without_overriding_given_values() -> None:
    schema = Echo.input_schema()
    assert schema.prepare({"name": "Ada"}) == {"name": "Ada", "count": 1, "flag": False}
    assert schema.prepare({"name": "Ada", "count": "3", "flag": "on"}) == {
        "name": "Ada",
        "count": 3,
        "flag": True,
    }


def test_nested_defaults_are_filled_through_refs() -> None:
    out = Echo.input_schema().prepare({"name": "Ada", "attendee": {"name": "Bo"}})
    assert out["attendee"] == {"name": "Bo", "timeZone": "UTC"}


def test_nested_defaults_inside_default_objects_and_array_items() -> None:
    schema = _schema(
        {
            "opts": {
                "type": "object",
                "default": {"level": 1},
                "properties": {"level": {"type": "integer"}, "mode": {"default": "fast"}},
            },
            "guests": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"email": {"type": "string"}, "role": {"default": "guest"}},
                },
            },
        }
    )
    out = schema.prepare({"guests": [{"email": "a@b.co"}, {"email": "c@d.co", "role": "host"}]})
    assert out["guests"] == [
        {"email": "a@b.co", "role": "guest"},
        {"email": "c@d.co", "role": "host"},
    ]
    # A default that is an object is copied, not shared with the schema.
    assert out["opts"] == {"level": 1}
    out["opts"]["level"] = 99
    assert schema.prepare({})["opts"] == {"level": 1}


def test_defaults_come_from_the_chosen_variant_and_the_root() -> None:
    schema = Contact.input_schema()
    assert schema.prepare({"email": "ada@example.com"}) == {
        "email": "ada@example.com",
        "channel": "email",
        "note": "none",
    }
    assert schema.prepare({"phone": "+4915112345678", "note": "hi"}) == {
        "phone": "+4915112345678",
        "sms": True,
        "note": "hi",
    }


# --- validation errors ----------------------------------------------------------------


def test_each_missing_required_field_is_reported_once() -> None:
    schema = _schema(
        {"a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": "string"}},
        required=["a", "b", "c"],
    )
    errors = _errors(schema, {"b": "x"})
    assert errors == [
        FieldError("a", "is required", "required"),
        FieldError("c", "is required", "required"),
    ]


def test_nested_errors_name_the_dotted_path_and_rule() -> None:
    schema = _schema(
        {
            "attendee": {
                "type": "object",
                "properties": {
                    "email": {"type": "string", "format": "email"},
                    "name": {"type": "string"},
                },
                "required": ["name"],
            },
            "guests": {"type": "array", "items": {"type": "string", "format": "email"}},
            "count": {"type": "integer", "minimum": 1},
        }
    )
    errors = _errors(
        schema,
        {"attendee": {"email": "nope"}, "guests": ["a@b.co", "bad"], "count": "0"},
    )
    assert {(e.path, e.rule) for e in errors} == {
        ("attendee.email", "format"),
        ("attendee.name", "required"),
        ("guests.1", "format"),
        ("count", "minimum"),
    }
    assert len(errors) == 4


def test_error_rules_for_enum_and_additional_properties() -> None:
    schema = Echo.input_schema()
    errors = _errors(schema, {"name": "", "extra": 1})
    assert {(e.path, e.rule) for e in errors} == {
        ("extra", "additionalProperties"),  # the field's own path, not its object's
        ("name", "minLength"),
    }
    assert "extra" in next(e.message for e in errors if e.rule == "additionalProperties")


def test_validation_error_text_and_dict_name_every_field() -> None:
    with pytest.raises(ValidationError) as info:
        Echo.input_schema().prepare({"count": "zero"})
    exc = info.value
    assert exc.code == "VALIDATION_ERROR"
    text = str(exc)
    assert "count:" in text and "name: is required" in text
    as_dict = exc.to_dict()
    assert {e["path"] for e in as_dict["errors"]} == {"count", "name"}


@pytest.mark.parametrize("raw", [[1, 2], "name=Ada", None, 42])
def test_non_object_input_is_a_validation_error(raw: Any) -> None:
    errors = _errors(Echo.input_schema(), raw)
    assert len(errors) == 1
    assert errors[0].rule == "type"
    assert type(raw).__name__ in errors[0].message


# --- oneOf variants -------------------------------------------------------------------

AMBIGUOUS = InputSchema(
    {
        "type": "object",
        "oneOf": [
            {"title": "By id", "properties": {"id": {"type": "integer"}}, "required": ["id"]},
            {"title": "By slug", "properties": {"slug": {"type": "string"}}, "required": ["slug"]},
            {"properties": {"uid": {"type": "string"}}, "required": ["uid"]},
        ],
    }
)


def test_exactly_one_matching_variant_is_used_with_its_coercion() -> None:
    assert AMBIGUOUS.prepare({"id": "12"}) == {"id": 12}
    assert AMBIGUOUS.prepare({"slug": "intro"}) == {"slug": "intro"}


def test_two_matching_variants_are_an_error_naming_both() -> None:
    with pytest.raises(ValidationError) as info:
        AMBIGUOUS.prepare({"id": 1, "slug": "intro"})
    assert "'By id'" in info.value.message and "'By slug'" in info.value.message
    assert "variant 3" not in info.value.message
    assert [e.rule for e in info.value.errors] == ["oneOf"]


def test_untitled_variants_are_named_by_position() -> None:
    assert AMBIGUOUS.variant_titles() == ["By id", "By slug", "variant 3"]
    with pytest.raises(ValidationError, match="'By id', 'variant 3'"):
        AMBIGUOUS.prepare({"id": 1, "uid": "u"})


def test_no_matching_variant_names_the_closest_and_its_errors() -> None:
    schema = Contact.input_schema()
    with pytest.raises(ValidationError) as info:
        schema.prepare({"phone": "+4915112345678", "sms": "maybe"})
    exc = info.value
    assert "none of the variants ('By email', 'By phone')" in exc.message
    assert "closest is 'By phone'" in exc.message
    assert [(e.path, e.rule) for e in exc.errors] == [("sms", "type")]


def test_no_matching_variant_closest_by_fewest_errors() -> None:
    with pytest.raises(ValidationError) as info:
        Contact.input_schema().prepare({"email": "not-an-email"})
    assert "closest is 'By email'" in info.value.message
    assert [(e.path, e.rule) for e in info.value.errors] == [("email", "format")]


def test_variant_schemas_carry_root_required_fields() -> None:
    schema = InputSchema(
        {
            "type": "object",
            "properties": {"who": {"type": "string"}},
            "required": ["who"],
            "oneOf": [
                {"title": "A", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"title": "B", "properties": {"b": {"type": "string"}}, "required": ["b", "who"]},
            ],
        }
    )
    with pytest.raises(ValidationError) as info:
        schema.prepare({"a": "x"})
    assert [(e.path, e.rule) for e in info.value.errors] == [("who", "required")]
    assert schema.prepare({"b": "y", "who": "me"}) == {"b": "y", "who": "me"}


# --- formats --------------------------------------------------------------------------

FORMATS = _schema(
    {
        "when": {"type": "string", "format": "date-time"},
        "day": {"type": "string", "format": "date"},
        "email": {"type": "string", "format": "email"},
        "url": {"type": "string", "format": "uri"},
        "tz": {"type": "string", "format": "time-zone"},
    }
)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("when", "2026-05-01T10:00:00+02:00"),
        ("when", "2026-05-01T10:00:00Z"),
        ("when", "2026-05-01T10:00:00.123-05:30"),
        ("day", "2026-05-01"),
        ("day", "2024-02-29"),
        ("email", "ada@example.com"),
        ("email", "first.last+tag@sub.example.org"),
        ("url", "https://example.com/hook?x=1"),
        ("tz", "Europe/Berlin"),
        ("tz", "America/Argentina/Buenos_Aires"),
        ("tz", "UTC"),
    ],
)
def test_valid_formats_pass(field: str, value: str) -> None:
    assert FORMATS.prepare({field: value}) == {field: value}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("when", "2026-05-01T10:00:00"),
        ("when", "2026-05-01"),
        ("when", "tomorrow at ten"),
        ("when", "2026-13-01T10:00:00Z"),
        ("when", "2026-W18-5T10:00:00Z"),
        ("when", "20260501T100000Z"),
        ("day", "2026-5-1"),
        ("day", "2026-02-30"),
        ("day", "01.05.2026"),
        ("day", "2026-W18-5"),
        ("day", "20260501"),
        ("email", "ada.example.com"),
        ("email", "@example.com"),
        ("email", "ada@localhost"),
        ("email", "a da@example.com"),
        ("url", "not a url"),
        ("url", "http://"),
        ("tz", "Mars/Olympus_Mons"),
        ("tz", "+02:00"),
    ],
)
def test_invalid_formats_are_format_errors(field: str, value: str) -> None:
    errors = _errors(FORMATS, {field: value})
    assert [(e.path, e.rule) for e in errors] == [(field, "format")]


# --- iter_fields and fetcher refs -----------------------------------------------------


def test_iter_fields_finds_fetchers_in_variants_nested_objects_arrays_and_refs() -> None:
    schema = {
        "type": "object",
        "properties": {
            "event": {"type": "integer", "x-fetcher": "event_types"},
            "booking": {
                "type": "object",
                "properties": {"uid": {"type": "string", "x-fetcher": "bookings"}},
            },
            "guests": {"type": "array", "items": {"$ref": "#/$defs/guest"}},
        },
        "oneOf": [
            {
                "title": "By slug",
                "properties": {
                    "slug": {
                        "type": "string",
                        "x-fetcher": "user_event_types",
                        "x-fetcher-depends-on": ["username"],
                    }
                },
            },
            {"title": "By id", "properties": {"id": {"type": "integer"}}},
        ],
        "$defs": {
            "guest": {
                "type": "object",
                "properties": {"who": {"type": "string", "x-fetcher": "people"}},
            }
        },
    }
    found = {path: sub["x-fetcher"] for path, sub in iter_fields(schema) if "x-fetcher" in sub}
    assert found == {
        "event": "event_types",
        "booking.uid": "bookings",
        "guests[].who": "people",
        "slug": "user_event_types",
    }
    paths = [path for path, _ in iter_fields(schema)]
    assert "id" in paths and "guests" in paths and "booking" in paths


def test_fetcher_refs_of_an_action_carry_depends_on() -> None:
    from .fixture_app.actions import Pick
    from .fixture_app.broken import StringDeps

    assert Pick.fetcher_refs() == [("color", "colors", []), ("size", "sizes", ["color"])]
    # A single field given as a string is one field, not a list of its letters.
    assert StringDeps.fetcher_refs() == [("size", "sizes", ["color"])]


# --- load_schema ----------------------------------------------------------------------


def test_load_schema_reads_and_checks_a_packaged_file() -> None:
    schema = load_schema(PKG, "echo.json")
    assert schema["required"] == ["name"]


@pytest.mark.parametrize(
    ("filename", "match"),
    [
        ("no_such_file.json", "not found"),
        ("not_json.json", "not valid JSON"),
        ("invalid_schema.json", "not a valid JSON Schema"),
    ],
)
def test_load_schema_problems_are_config_errors(filename: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        load_schema(PKG, filename)
    assert filename in info.value.message


# --- properties -----------------------------------------------------------------------

INTS = _schema({"n": {"type": "integer"}, "m": {"type": ["integer", "null"]}})


@given(st.integers())
def test_str_of_any_int_coerces_back_to_it(n: int) -> None:
    assert INTS.prepare({"n": str(n), "m": f" {n} "}) == {"n": n, "m": n}


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_repr_of_any_finite_float_coerces_back_to_it(x: float) -> None:
    out = _schema({"x": {"type": "number"}}).prepare({"x": repr(x)})
    assert out["x"] == x and math.isfinite(out["x"])


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["42", "true", "on", "a,b", "[1]", '{"x": 1}', "", "nan", "2026-05-01"])
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(
        st.sampled_from(["name", "count", "ratio", "tags", "attendee", "email", "x"]),
        inner,
        max_size=4,
    ),
    max_leaves=12,
)
FIELD_NAMES = st.sampled_from(
    ["name", "count", "ratio", "flag", "tags", "attendee", "email", "phone", "sms", "note", "zz"]
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSON, st.dictionaries(FIELD_NAMES, JSON, max_size=6)))
def test_prepare_raises_nothing_but_validation_error(raw: Any) -> None:
    for schema in (Echo.input_schema(), Contact.input_schema(), FORMATS, AMBIGUOUS):
        try:
            out = schema.prepare(raw)
        except ValidationError as exc:
            assert exc.errors or exc.message
        else:
            assert isinstance(out, dict)
