"""App: a provider or tool, with its credential fields, actions and data fetchers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from calflow.errors import FieldError, NotFoundError, ValidationError
from calflow.flowapp.action import Action, DataFetcher
from calflow.flowapp.model import SKIPPED_ROUTE, AuthMode, CredentialField
from calflow.flowapp.schema import open_objects
from calflow.flowapp.values import KINDS, problem
from calflow.workflows.suggest import did_you_mean

SettingsCheck = Callable[[Mapping[str, Any]], list[FieldError]]
"""A check across an integration's fields: the problems of its values (never echoing a
secret)."""


def _norm(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


@dataclass
class App:
    """A FlowApp. Action and fetcher keys are looked up exactly, then loosely
    (``BookMeeting`` == ``book_meeting``)."""

    key: str
    name: str
    description: str
    credential_fields: tuple[CredentialField, ...] = ()
    auth_modes: tuple[AuthMode, ...] = ()
    actions: tuple[type[Action], ...] = ()
    fetchers: tuple[type[DataFetcher], ...] = ()
    rate_limit: tuple[int, float] | None = None
    """The provider's rate limit per credential: (requests, per seconds). Workflow steps
    of one integration share a queue that keeps to it, across every worker."""
    concurrency: int | None = None
    """At most this many calls of one integration in flight per worker (None: no limit)."""
    checks: tuple[SettingsCheck, ...] = ()
    """Checks across fields, run whenever an integration is saved (after ``choices``)."""
    _action_index: dict[str, type[Action]] = field(init=False, repr=False)
    _fetcher_index: dict[str, type[DataFetcher]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._action_index = {_norm(a.key): a for a in self.actions}
        self._fetcher_index = {_norm(f.key): f for f in self.fetchers}

    def action(self, key: str) -> type[Action]:
        found = self._action_index.get(_norm(key))
        if found is None:
            keys = [a.key for a in self.actions]
            raise NotFoundError(
                f"app {self.key!r} has no action {key!r} (it has: {', '.join(keys)})"
                f"{did_you_mean(key, keys)}"
            )
        return found

    def fetcher(self, key: str) -> type[DataFetcher]:
        found = self._fetcher_index.get(_norm(key))
        if found is None:
            known = ", ".join(f.key for f in self.fetchers) or "none"
            raise NotFoundError(f"app {self.key!r} has no fetcher {key!r} (it has: {known})")
        return found

    @property
    def secret_keys(self) -> frozenset[str]:
        return frozenset(f.key for f in self.credential_fields if f.secret)

    def split_values(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """Split integration values into (config, secrets); unknown keys are an error."""
        known = {f.key: f for f in self.credential_fields}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValidationError(
                f"app {self.key!r} has no credential field {', '.join(map(repr, unknown))}",
                [
                    FieldError(k, f"unknown field; known: {', '.join(known)}", "unknown")
                    for k in unknown
                ],
            )
        config = {k: v for k, v in values.items() if not known[k].secret}
        # a secret left empty (None) is not set; str(None) would store the text "None"
        secrets = {k: str(v) for k, v in values.items() if known[k].secret and v is not None}
        return config, secrets

    def check_settings(self, values: Mapping[str, Any]) -> None:
        """``ValidationError`` for a value outside its field's ``choices``, a value not of
        its field's ``kind`` (:mod:`calflow.flowapp.values`), or a problem one of the app's
        ``checks`` finds. Each error names the field and what it takes."""
        errors: list[FieldError] = []
        for f in self.credential_fields:
            value = values.get(f.key)
            if value in (None, ""):
                continue
            if f.choices and value not in f.choices:
                got = "" if f.secret else f" (got {str(value)[:60]!r})"
                near = "" if f.secret else did_you_mean(str(value), f.choices)
                errors.append(
                    FieldError(f.key, f"must be one of: {', '.join(f.choices)}{got}{near}", "enum")
                )
            elif (why := problem(f.kind, value)) is not None:
                got = "" if f.secret else f" (got {str(value)[:60]!r})"
                errors.append(FieldError(f.key, f"{why}{got}", f.kind))
        if not errors:
            for check in self.checks:
                errors += check(values)
        if errors:
            fields = ", ".join(sorted({e.path for e in errors}))
            raise ValidationError(f"invalid settings for {self.key!r}: {fields}", errors)

    def fields_for_new(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """(config, secrets) of a new integration: split, defaults filled in, checked."""
        config, secrets = self.split_values(values)
        for f in self.credential_fields:
            if f.default is not None and not f.secret and f.key not in config:
                config[f.key] = f.default
        self.check_settings({**config, **secrets})
        self.check_credentials({**config, **secrets})
        return config, secrets

    def fields_for_update(
        self, current: Mapping[str, Any], values: Mapping[str, Any], unset: Iterable[str] = ()
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """(config, secrets) to merge into an integration whose fields are ``current``,
        checked as they will be once merged and ``unset`` removed."""
        config, secrets = self.split_values(values)
        removed = list(unset)
        known = {f.key for f in self.credential_fields}
        unknown = sorted(set(removed) - known)
        if unknown:
            raise ValidationError(
                "unknown fields to unset",
                [FieldError(f"unset.{k}", "no such field") for k in unknown],
            )
        after = {**current, **config, **secrets}
        for key in removed:
            after.pop(key, None)
        self.check_settings(after)
        self.check_credentials(after)
        return config, secrets

    def check_credentials(self, values: Mapping[str, Any]) -> None:
        """Raise ``ValidationError`` unless required fields and one auth mode are present."""
        present = {k for k, v in values.items() if v not in (None, "")}
        errors = [
            FieldError(f.key, "is required", "required")
            for f in self.credential_fields
            if f.required and f.key not in present and f.default is None
        ]
        if self.auth_modes and not any(set(m.fields) <= present for m in self.auth_modes):
            ways = " or ".join(f"{m.label} ({', '.join(m.fields)})" for m in self.auth_modes)
            errors.append(FieldError("", f"give the fields of one way to sign in: {ways}", "auth"))
        if errors:
            raise ValidationError(f"credentials for {self.key!r} are incomplete", errors)

    def describe(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "credential_fields": [f.to_dict() for f in self.credential_fields],
            "auth_modes": [
                {"key": m.key, "label": m.label, "fields": list(m.fields)} for m in self.auth_modes
            ],
            "actions": [a.describe() for a in self.actions],
            "fetchers": [f.describe() for f in self.fetchers],
        }

    def problems(self) -> list[str]:
        """Declaration errors: unknown fetchers in schemas, results on undeclared ports…"""
        out: list[str] = [
            f"{self.key}: credential field {f.key!r} has unknown kind {f.kind!r} "
            f"(known: {', '.join(KINDS)})"
            for f in self.credential_fields
            if f.kind not in KINDS
        ]
        fetcher_keys = {f.key for f in self.fetchers}
        for kind, keys in (
            ("action", [a.key for a in self.actions]),
            ("fetcher", [f.key for f in self.fetchers]),
        ):
            normed = [_norm(k) for k in keys]
            clashes = sorted(k for k in keys if normed.count(_norm(k)) > 1)
            if clashes:  # the lookup index would keep only one of them
                out.append(f"{self.key}: {kind} keys {clashes} are the same key when looked up")
        for fetcher_cls in self.fetchers:
            out += _context_problems(self.key, fetcher_cls)
        for action in self.actions:
            try:
                action.input_schema()
            except Exception as exc:  # a broken schema file is itself the problem to report
                out.append(f"{self.key}.{action.key}: schema does not load: {exc}")
                continue
            out += [
                f"{self.key}.{action.key}: {_where(p)} admits undeclared fields "
                "(say additionalProperties: false, or a schema for a map)"
                for p in open_objects(action.input_schema().schema)
            ]
            for path, fetcher, deps in action.fetcher_refs():
                if fetcher not in fetcher_keys:
                    out.append(
                        f"{self.key}.{action.key}: field {path!r} names unknown fetcher {fetcher!r}"
                    )
                fdeps = set(self.fetcher(fetcher).depends_on) if fetcher in fetcher_keys else set()
                missing = set(deps) - fdeps
                if missing:
                    out.append(
                        f"{self.key}.{action.key}: field {path!r} depends on "
                        f"{sorted(missing)} which fetcher {fetcher!r} does not take"
                    )
            port_keys = [p.key for p in action.ports]
            if len(set(port_keys)) != len(port_keys):
                out.append(f"{self.key}.{action.key}: duplicate port keys {port_keys}")
            if not any(p.error for p in action.ports):
                out.append(f"{self.key}.{action.key}: declares no error port")
            if action.success_port() is None:
                out.append(f"{self.key}.{action.key}: declares no success (non-error) port")
            if SKIPPED_ROUTE in port_keys:
                out.append(
                    f"{self.key}.{action.key}: port {SKIPPED_ROUTE!r} is reserved "
                    "(a workflow step's route when the step is skipped)"
                )
        return out


def _where(path: str) -> str:
    return f"field {path!r}" if path else "the input"


def _context_problems(app_key: str, fetcher: type[DataFetcher]) -> list[str]:
    """A fetcher's context schema: it loads, is closed, and requires what it depends on."""
    where = f"{app_key}.{fetcher.key}"
    try:
        schema = fetcher.context_schema().schema
    except Exception as exc:  # a broken schema is itself the problem to report
        return [f"{where}: context schema does not load: {exc}"]
    out = [
        f"{where}: context {_where(p).replace('the input', 'schema')} admits undeclared fields"
        for p in open_objects(schema)
    ]
    missing = [d for d in fetcher.depends_on if d not in schema.get("required", [])]
    if missing:
        out.append(f"{where}: context schema does not require {missing} it depends on")
    return out
