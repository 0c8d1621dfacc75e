"""What the replay engine needs from a provider: paging, kinds, envelopes, signatures."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from calflow.errors import FieldError, ValidationError
from calflow.replay.model import ReplayItem

USER_AGENT = "calflow-replay/0.1"


@dataclass(frozen=True)
class SourcePage:
    """One page of history: its objects, the token that fetched it and the next token.

    Tokens are what the engine stores as its checkpoint: fetching with ``token`` again
    returns this page, fetching with ``next_token`` returns the next one (``None``:
    this was the last page).
    """

    items: list[Mapping[str, Any]]
    token: str | None
    next_token: str | None
    total: int | None = None


def compact_json(value: Any) -> bytes:
    """``JSON.stringify``-style bytes (no spaces, unicode kept), as providers send."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from a provider's ISO 8601 string, or ``None``."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class ProviderAdapter(ABC):
    """One provider's replay behaviour. ``kinds`` maps native kind names to normalized."""

    provider: ClassVar[str]
    label: ClassVar[str]
    kinds: ClassVar[Mapping[str, str]]
    id_prefix: ClassVar[str]

    @abstractmethod
    def pages(self, token: str | None) -> AsyncGenerator[SourcePage, None]:
        """The history from ``token`` (``None``: the beginning), page by page."""

    @abstractmethod
    async def fetch_one(self, object_id: str) -> Mapping[str, Any] | None:
        """One object by id, fresh from the provider (``None`` when it is gone)."""

    @abstractmethod
    def object_id(self, obj: Mapping[str, Any]) -> str:
        """The provider's id of ``obj``."""

    @abstractmethod
    def start(self, obj: Mapping[str, Any]) -> datetime | None:
        """When the meeting starts (what ``--since``/``--until`` select on)."""

    @abstractmethod
    def classify(self, obj: Mapping[str, Any]) -> tuple[str | None, str]:
        """The native kind to replay ``obj`` as, or ``(None, reason)`` to skip it."""

    @abstractmethod
    def body(self, obj: Mapping[str, Any], kind: str, item_id: str) -> bytes:
        """The delivery body the provider would send for ``obj`` as ``kind``."""

    @abstractmethod
    def headers(self, secret: str | None, body: bytes, item: ReplayItem) -> dict[str, str]:
        """The delivery headers, signed in the provider's own scheme."""

    def change_marker(self, obj: Mapping[str, Any], kind: str) -> str:
        """Extra identity of a change beyond (object, kind); a reschedule adds its time."""
        return ""

    def item_id(self, obj: Mapping[str, Any], kind: str) -> str:
        """The deterministic id of replaying ``obj`` as ``kind``."""
        oid = self.object_id(obj)
        key = f"{self.provider}\x1f{oid}\x1f{kind}\x1f{self.change_marker(obj, kind)}"
        return self.id_prefix + hashlib.sha256(key.encode()).hexdigest()[:32]

    def item(self, obj: Mapping[str, Any], kind: str, page: int = 0) -> ReplayItem:
        item_id = self.item_id(obj, kind)
        return ReplayItem(
            id=item_id,
            object_id=self.object_id(obj),
            kind=kind,
            start=self.start(obj),
            body=self.body(obj, kind, item_id),
            page=page,
        )

    def resolve_kinds(self, wanted: tuple[str, ...]) -> frozenset[str]:
        """Native kind names for ``--kinds`` values (native or normalized, any case)."""
        out: set[str] = set()
        bad: list[str] = []
        for raw in wanted:
            name = raw.strip()
            if not name:
                continue
            natives = [k for k in self.kinds if k.lower() == name.lower()]
            natives += [k for k, norm in self.kinds.items() if norm == _normal(name)]
            if not natives:
                bad.append(name)
            out.update(natives)
        if bad:
            choices = sorted({*self.kinds.values(), *self.kinds})
            raise ValidationError(
                f"unknown kind(s) for {self.label}: {', '.join(bad)}",
                [FieldError("kinds", f"choose from {', '.join(choices)}", "enum")],
            )
        return frozenset(out)


_SYNONYMS = {"canceled": "cancelled", "rejected": "declined", "booked": "created"}


def _normal(name: str) -> str:
    low = name.lower()
    return _SYNONYMS.get(low, low)
