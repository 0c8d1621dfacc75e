"""Tool results: the structured outcome plus one sentence an agent can say.

A voice agent acts on the port ("conflict": offer another time) and speaks the
summary, so every result carries ``{port, success, data, error, run_id, summary}`` as
structured content, the summary as the first text block, and the same JSON as a second
text block for clients that only pass text to the model (as the MCP spec advises).
Answers on a non-error port (``conflict``, ``not_found``) are results; only failures
(the action's error port, invalid arguments, unknown tools) are ``isError``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import mcp.types as mt

from calflow.errors import CalflowError, ValidationError
from calflow.flowapp.action import Action
from calflow.flowapp.model import ActionResult, Option
from calflow.mcp.schema import snake

_VERBS = (
    ("book", "Booked"),
    ("reschedule", "Rescheduled"),
    ("cancel", "Cancelled"),
    ("confirm", "Confirmed"),
    ("decline", "Declined"),
)


def spoken_time(value: Any) -> str:
    """``2030-11-24T10:00:00Z`` → ``Sun 24 Nov 10:00 UTC`` (the text itself if unparsable)."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%a %d %b %H:%M UTC")


def _first(data: Mapping[str, Any], *keys: str) -> Any:
    return next((data[k] for k in keys if data.get(k) not in (None, "")), None)


def _people(data: Mapping[str, Any]) -> str:
    attendees = data.get("attendees")
    if not isinstance(attendees, list):
        return ""
    names = [
        str(a.get("name") or a.get("display_name") or a.get("email") or "")
        for a in attendees
        if isinstance(a, Mapping)
    ]
    return " and ".join(n for n in names if n)


def booking_sentence(verb: str, data: Mapping[str, Any]) -> str | None:
    """``Booked 'Intro call' on Tue 24 Nov 10:00 UTC with Ada (uid …)``; None if ``data``
    is no booking."""
    start = _first(data, "start", "start_at", "startTime")
    uid = _first(data, "uid", "id")
    if start is None or uid is None:
        return None
    title = _first(data, "title", "summary", "name")
    people = _people(data)
    preposition = "to" if verb == "Rescheduled" else "on"
    text = verb + (f" '{title}'" if title else "") + f" {preposition} {spoken_time(start)}"
    if people:
        text += f" with {people}"
    status = data.get("status")
    if verb == "Found" and isinstance(status, str) and status:
        text += f", {status.lower()}"
    return f"{text} (uid {uid})"


def _slots_sentence(data: Mapping[str, Any]) -> str | None:
    slots = data.get("slots")
    if not isinstance(slots, list):
        return None
    if not slots:
        return "No open slots in that range."
    starts = [spoken_time(s.get("start") if isinstance(s, Mapping) else s) for s in slots[:3]]
    more = f" (first {len(starts)} shown)" if len(slots) > len(starts) else ""
    noun = "slot" if len(slots) == 1 else "slots"
    return f"{len(slots)} open {noun}: {', '.join(starts)}{more}."


def summarize(action: type[Action], result: ActionResult) -> str:
    """The one sentence for ``result`` of ``action``."""
    if not result.success:
        return f"{action.name} failed: {result.message or 'no reason given'} ({result.code})."
    if result.port == "conflict":
        return "That slot is no longer available (conflict)."
    if result.port == "not_found":
        return f"Not found (not_found): {result.message or 'the provider has no such record'}."
    data = result.data
    if result.port != "success":
        port = action.port(result.port)
        why = result.message or (port.description if port else "")
        return f"{action.name}: {result.port}" + (f" — {why}" if why else "") + "."
    if isinstance(data, Mapping):
        key = snake(action.key)
        verb = next((v for prefix, v in _VERBS if key.startswith(prefix)), "Found")
        for sentence in (booking_sentence(verb, data), _slots_sentence(data)):
            if sentence:
                return sentence
        for name in ("bookings", "events", "items", "links", "data"):
            if isinstance(data.get(name), list):
                return f"{action.name}: {len(data[name])} {name}."
    if isinstance(data, list):
        return f"{action.name}: {len(data)} results."
    return f"{action.name}: done."


def _content(summary: str, structured: dict[str, Any]) -> list[mt.ContentBlock]:
    return [
        mt.TextContent(text=summary),
        mt.TextContent(text=json.dumps(structured, default=str, ensure_ascii=False)),
    ]


def action_result(action: type[Action], result: ActionResult, run_id: str) -> mt.CallToolResult:
    """The tool result of one action call (``isError`` for failures only)."""
    summary = summarize(action, result)
    error = None if result.success else {"code": result.code, "message": result.message}
    structured: dict[str, Any] = {
        "port": result.port,
        "success": result.success,
        "data": result.data,
        "error": error,
        "run_id": run_id,
        "summary": summary,
    }
    return mt.CallToolResult(
        content=_content(summary, structured),
        structured_content=structured,
        is_error=not result.success,
    )


def options_result(options: Sequence[Option]) -> mt.CallToolResult:
    """The tool result of a fetcher: its options and how many."""
    labels = "; ".join(o.label for o in options[:5])
    more = " …" if len(options) > 5 else ""
    summary = f"{len(options)} options: {labels}{more}" if options else "No options."
    structured: dict[str, Any] = {
        "options": [o.to_dict() for o in options],
        "count": len(options),
        "summary": summary,
    }
    return mt.CallToolResult(content=_content(summary, structured), structured_content=structured)


def error_details(exc: CalflowError) -> dict[str, Any]:
    """``{code, message, details: [{field, message}]}``: the REST API's error shape."""
    fields = exc.errors if isinstance(exc, ValidationError) else []
    return {
        "code": exc.code,
        "message": exc.message,
        "details": [{"field": e.path, "message": e.message} for e in fields],
    }


def error_result(exc: CalflowError) -> mt.CallToolResult:
    """A tool error for a call that could not run: its code, message and fields."""
    details = error_details(exc)
    message = str(exc) if isinstance(exc, ValidationError) else exc.message
    summary = f"{exc.code}: {message}"
    structured: dict[str, Any] = {
        "port": "error",
        "success": False,
        "data": None,
        "error": details,
        "run_id": None,
        "summary": summary,
    }
    return mt.CallToolResult(
        content=_content(summary, structured), structured_content=structured, is_error=True
    )
