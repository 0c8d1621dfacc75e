"""Bounded documents and templates at the API: an alias bomb, deep nesting, a huge body
and template bombs are each a 422 naming the limit; errors quote at most a few hundred
characters of the input; nothing is saved."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from calflow.errors import QUOTE_MAX, ValidationError
from calflow.workflows import documents
from calflow.workflows.definition import load_text

from .conftest import Api

YAML = {"content-type": "application/yaml"}

ALIAS_BOMB = "\n".join(
    ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 9)]
)


def test_the_alias_bomb_is_small_and_refused_without_being_expanded() -> None:
    assert len(ALIAS_BOMB) < 700
    with pytest.raises(ValidationError) as caught:
        load_text(ALIAS_BOMB)
    assert [e.to_dict() for e in caught.value.errors] == [{
        "path": "", "rule": "maxNodes",
        "message": "has more than 10,000 values once its aliases are expanded"}]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("a: &a [*a]", "alias"),
        ("[" * 5000 + "]" * 5000, "maxDepth"),
        ("x: " + "y" * 300_000, "maxBytes"),
        ("\n".join(f"k{n}: [1, 2]" for n in range(4000)), "maxNodes"),
    ],
)
def test_documents_keep_their_limits(text: str, rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_text(text)
    assert [e.rule for e in caught.value.errors] == [rule]


def test_json_keeps_the_same_limits() -> None:
    for text, rule in (("[" * 100_000 + "]" * 100_000, "maxDepth"),
                       ('{"a": ' + "[" * 33 + "1" + "]" * 33 + "}", "maxDepth"),
                       (json.dumps(list(range(20_000))), "maxNodes")):  # fmt: skip
        with pytest.raises(ValidationError) as caught:
            documents.load_json(text)
        assert [e.rule for e in caught.value.errors] == [rule]
    assert documents.load_json('{"name": "ok"}') == {"name": "ok"}


def _details(resp: httpx.Response) -> list[dict[str, Any]]:
    assert resp.status_code == 422, resp.text
    assert len(resp.content) < 4 * QUOTE_MAX + 2000, len(resp.content)
    details: list[dict[str, Any]] = resp.json()["error"]["details"]
    return details


async def test_the_api_refuses_each_document_attack_with_a_422(api: Api) -> None:
    a = api.a.client
    bomb = await a.post("/api/v1/workflows", content=ALIAS_BOMB, headers=YAML)
    assert _details(bomb) == [{"field": "", "message": "has more than 10,000 values once its "
                                                     "aliases are expanded"}]  # fmt: skip
    deep = await a.post("/api/v1/workflows", content="[" * 50_000 + "]" * 50_000,
                        headers={"content-type": "application/json"})  # fmt: skip
    assert _details(deep) == [{"field": "", "message": "nests more than 32 levels"}]
    checked = await a.post("/api/v1/workflows/validate", content=ALIAS_BOMB, headers=YAML)
    assert checked.status_code == 200 and checked.json()["valid"] is False
    assert (await a.get("/api/v1/workflows")).json()["items"] == []


async def test_errors_quote_at_most_a_few_hundred_characters(api: Api) -> None:
    huge = "Z" * 200_000
    doc = {"name": huge, "trigger": {"kinds": [huge]}, "steps": [{"id": huge, huge: 1}]}
    resp = await api.a.client.post("/api/v1/workflows", json=doc)
    for detail in _details(resp):
        assert len(detail["message"]) < QUOTE_MAX + 60 and len(detail["field"]) < QUOTE_MAX + 60
    assert huge not in resp.text


async def test_template_bombs_are_refused_at_validate_and_apply(api: Api) -> None:
    doc = {"name": "bomb", "trigger": {"kinds": ["created"],
                                       "when": "(range(100000)|list|length) * ('x' * 10**9)"},
           "steps": [{"id": "mail", "action": "email.SendEmail", "integration": "m",
                      "input": {"to": "{{ attendee.email }}", "subject": "{{ 'x' * 4*10**8 }}",
                                "text": "{% for i in range(10000) %}{% for j in range(10000) %}"
                                        "{% endfor %}{% endfor %}"}}]}  # fmt: skip
    expected = {
        "trigger.when": "breaks a template limit: a value of 1,000,000,000 characters or items "
        "(at most 100,000)",
        "steps.0.input.subject": "breaks a template limit: a value of 400,000,000 characters "
        "or items (at most 100,000)",
        "steps.0.input.text": "breaks a template limit: more than 100,000 steps (loop "
        "iterations, calls, outputs)",
    }
    params = {"allow_missing_integrations": "true"}
    made = await api.a.client.post("/api/v1/workflows", json=doc, params=params)
    assert {d["field"]: d["message"] for d in _details(made)} == expected
    checked = (await api.a.client.post("/api/v1/workflows/validate", json=doc,
                                       params=params)).json()  # fmt: skip
    assert {e["field"]: e["message"] for e in checked["errors"]} == expected
    assert (await api.a.client.get("/api/v1/workflows")).json()["items"] == []
