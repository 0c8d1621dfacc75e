"""Paginators: small objects that a client's loop drives (after dlt's paginators).

A paginator says what to add to the next request's query and, after each page,
whether there is another one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class Paginator(Protocol):
    """Drives one listing: ``params`` for the next request, ``advance`` after a page."""

    def params(self) -> dict[str, Any]: ...

    def advance(self, body: Any, returned: int) -> None: ...

    @property
    def has_next(self) -> bool: ...


@dataclass
class OffsetPaginator:
    """``take``/``skip`` style paging; stops when the body says there is no next page
    (``has_next_path``), or a page comes back short."""

    page_size: int = 100
    limit_param: str = "take"
    offset_param: str = "skip"
    offset: int = 0
    has_next_path: tuple[str, ...] = ("pagination", "hasNextPage")
    _more: bool = field(default=True, init=False)

    def params(self) -> dict[str, Any]:
        return {self.limit_param: self.page_size, self.offset_param: self.offset}

    def advance(self, body: Any, returned: int) -> None:
        self.offset += returned
        flag = _dig(body, self.has_next_path)
        if isinstance(flag, bool):
            self._more = flag and returned > 0
        else:
            self._more = returned >= self.page_size

    @property
    def has_next(self) -> bool:
        return self._more


@dataclass
class CursorPaginator:
    """Opaque-cursor paging: send ``after=<cursor>`` until the body's cursor is null."""

    page_size: int = 100
    limit_param: str = "limit"
    cursor_param: str = "after"
    cursor_path: tuple[str, ...] = ("metadata", "after")
    cursor: str | None = None
    _more: bool = field(default=True, init=False)

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {self.limit_param: self.page_size}
        if self.cursor:
            out[self.cursor_param] = self.cursor
        return out

    def advance(self, body: Any, returned: int) -> None:
        nxt = _dig(body, self.cursor_path)
        self.cursor = str(nxt) if nxt else None
        self._more = bool(nxt) and returned > 0

    @property
    def has_next(self) -> bool:
        return self._more


def _dig(body: Any, path: tuple[str, ...]) -> Any:
    node = body
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node
