"""``GET …/Messages.json``: the filters and the paging of Twilio's Message list.

Filters (``twilio_api_v2010.json``, ``ListMessage``; any other parameter is ignored, as
at Twilio, ``DateCreated`` included):

* ``To``, ``From``: equal to the message's ``to`` / ``from``.
* ``DateSent``, ``DateSent<``, ``DateSent>`` (sent in a URL as ``DateSent<=…`` and
  ``DateSent>=…``): on, on or before, on or after a GMT date ``YYYY-MM-DD``, or an
  ISO 8601 date-time (to the second; GMT when it has no offset), or an RFC 2822 date.
  They match only messages that were sent: a message still ``queued`` has no
  ``date_sent``. A value that is none of these is 400 / 20001.
* ``PageSize`` 1 to 1000 (default 50; 400 / 20001 outside), ``Page`` (echoed; it
  offsets the list only when there is no ``PageToken``), ``PageToken`` (``PA<sid>``:
  the page after that message, ``PB<sid>``: the page before it; handed out in
  ``next_page_uri`` / ``previous_page_uri``, so paging is stable while messages
  arrive).

Messages come newest first, in the order they were created (Twilio lists by SID,
"close to the date created"). The envelope: ``messages``, ``start``, ``end``, ``page``,
``page_size``, ``uri``, ``first_page_uri``, ``next_page_uri``, ``previous_page_uri``
(URIs relative to the API host, filters kept).
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from calflow.sandbox.twilio.errors import bad_request
from calflow.sandbox.twilio.state import Message

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
FILTERS = ("To", "From", "DateSent", "DateSent<", "DateSent>")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TOKEN = re.compile(r"^P([AB])(\w+)$")


def _invalid(name: str, value: str, rule: str) -> Exception:
    return bad_request(20001, f"Invalid value for {name}: {value!r} ({rule})")


def _when(name: str, value: str) -> date | datetime:
    """A ``DateSent`` value: a day, or an instant in UTC to the second."""
    text = value.strip()
    if _DAY.match(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    else:
        parsed: datetime | None = None
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError):
                parsed = None
        if parsed is not None:
            aware = parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=UTC)
            return aware.astimezone(UTC).replace(microsecond=0)
    raise _invalid(name, value, "a GMT date YYYY-MM-DD or an ISO 8601 date-time")


def _sent_test(op: str, bound: date | datetime) -> Callable[[datetime], bool]:
    """Whether a ``date_sent`` is on (``=``), on or before (``<``), on or after (``>``)."""

    def key(sent: datetime) -> date | datetime:
        utc = sent.astimezone(UTC)
        return utc.date() if not isinstance(bound, datetime) else utc.replace(microsecond=0)

    if op == "<":
        return lambda sent: key(sent) <= bound
    if op == ">":
        return lambda sent: key(sent) >= bound
    return lambda sent: key(sent) == bound


_OPS = {"DateSent": "=", "DateSent<": "<", "DateSent>": ">"}


@dataclass(frozen=True)
class Query:
    """A parsed list request."""

    filters: dict[str, str]
    page_size: int
    page: int
    token: str | None
    sent: tuple[Callable[[datetime], bool], ...] = ()

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Query:
        """The query, or the 400 Twilio answers for a bad ``PageSize``/``Page``/date."""
        filters = {k: params[k] for k in FILTERS if params.get(k)}
        sent = tuple(
            _sent_test(op, _when(name, value))
            for name, op in _OPS.items()
            if (value := filters.get(name)) is not None
        )
        size = cls._int(params, "PageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        page = cls._int(params, "Page", 0, 0, None)
        token = params.get("PageToken") or None
        if token is not None and not _TOKEN.match(token):
            raise _invalid("PageToken", token, "a token from next_page_uri or previous_page_uri")
        return cls(filters, size, page, token, sent)

    @staticmethod
    def _int(params: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
        raw = params.get(name)
        if raw is None or raw == "":
            return default
        rule = f"an integer from {low}" + (f" to {high}" if high is not None else "")
        try:
            value = int(raw)
        except ValueError:
            raise _invalid(name, raw, rule) from None
        if value < low or (high is not None and value > high):
            raise _invalid(name, raw, rule)
        return value

    def matches(self, message: Message) -> bool:
        """Whether the message passes every filter."""
        f = self.filters
        if "To" in f and message.to != f["To"]:
            return False
        if "From" in f and message.from_ != f["From"]:
            return False
        sent = message.date_sent
        if sent is None:
            return not self.sent  # not sent yet: no DateSent filter matches it
        return all(test(sent) for test in self.sent)

    def uri(self, base: str, page: int, token: str | None = None) -> str:
        """This query's URI for one page."""
        params: list[tuple[str, str]] = [*self.filters.items(), ("PageSize", str(self.page_size))]
        params.append(("Page", str(page)))
        if token:
            params.append(("PageToken", token))
        return f"{base}?{urlencode(params)}"


def _window(found: Sequence[Message], query: Query) -> tuple[int, int]:
    """``(first index, page number)`` of the page the query asks for."""
    size = query.page_size
    if query.token is None:
        return query.page * size, query.page
    match = _TOKEN.match(query.token)
    assert match is not None  # checked by Query.parse
    direction, sid = match.groups()
    index = next((i for i, m in enumerate(found) if m.sid == sid), None)
    if index is None:
        raise _invalid("PageToken", query.token, "no such page")
    return (index + 1, query.page) if direction == "A" else (max(index - size, 0), query.page)


def page(messages: Iterable[Message], query: Query, base: str) -> dict[str, Any]:
    """One page of the filtered messages, newest first, in Twilio's envelope."""
    found = [m for m in reversed(list(messages)) if query.matches(m)]
    first, number = _window(found, query)
    items = found[first : first + query.page_size]
    start = number * query.page_size
    more = first + len(items) < len(found)
    before = first > 0 and bool(items)
    token = query.token
    return {
        "messages": [m.to_json() for m in items],
        "start": start,
        "end": start + len(items) - 1 if items else start,
        "page": number,
        "page_size": query.page_size,
        "uri": query.uri(base, number, token),
        "first_page_uri": query.uri(base, 0),
        "next_page_uri": query.uri(base, number + 1, f"PA{items[-1].sid}") if more else None,
        "previous_page_uri": (
            query.uri(base, max(number - 1, 0), f"PB{items[0].sid}") if before else None
        ),
    }
