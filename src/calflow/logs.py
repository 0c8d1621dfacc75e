"""Log lines of ``calflow serve`` and ``calflow worker``: text or JSON, on stderr.

:func:`configure` puts one handler on the root logger at ``CALFLOW_LOG_LEVEL`` (debug,
info, warning, error) in ``CALFLOW_LOG_FORMAT`` (``text``: ``time LEVEL logger message
key=value…``; ``json``: one object per line with ``ts``, ``level``, ``logger``, ``msg``
and the fields). ``calflow.*`` loggers follow the level; every other library's (uvicorn,
httpx, alembic, DBOS, MCP) logs warnings and errors only, through the same handler.

A line's structured fields travel in ``extra={"fields": {...}}`` (:func:`fields`). What
calls them chooses what goes in: a method, a path without its query, a status, ids,
ports, timings; never a secret, token, body or phone number.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any, Literal, TextIO

__all__ = ["FORMATS", "LEVELS", "JsonFormatter", "TextFormatter", "configure", "fields"]

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
LogFormat = Literal["text", "json"]


def fields(**values: Any) -> dict[str, Any]:
    """The ``extra`` of a structured log call: ``log.info("…", extra=fields(run=…))``."""
    return {"fields": {k: v for k, v in values.items() if v is not None}}


def _fields_of(record: logging.LogRecord) -> Mapping[str, Any]:
    found = getattr(record, "fields", None)
    return found if isinstance(found, Mapping) else {}


def _timestamp(record: logging.LogRecord) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{stamp}.{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    """``2026-01-07T09:00:00.123Z INFO calflow.access GET /healthz 200 0.4 ms key=value``."""

    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={_text(v)}" for k, v in _fields_of(record).items())
        line = f"{_timestamp(record)} {record.levelname} {record.name} {record.getMessage()}"
        if extra:
            line = f"{line}  {extra}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def _text(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c in text for c in ' "=\n') else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, then the fields
    (a field never replaces those four), and ``exc`` with a traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in _fields_of(record).items():
            out.setdefault(key, value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure(level: str, fmt: LogFormat, stream: TextIO | None = None) -> None:
    """One handler on the root logger, writing ``fmt`` lines at ``level`` and above to
    ``stream`` (stderr); the handler a previous call installed is replaced."""
    root = logging.getLogger()
    # DBOS gives its logger a handler of its own unless it has one: this one, so that
    # its lines have the same format (it does not propagate to the root)
    dbos = logging.getLogger("dbos")
    for logger in (root, dbos):
        for old in list(logger.handlers):
            if getattr(old, "_calflow", False):
                logger.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler._calflow = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    if not dbos.handlers:
        dbos.addHandler(handler)
        dbos.propagate = False
    # other libraries stay at warning even at debug: httpx logs each request's URL at
    # info (a query string may carry a key), alembic each migration, MCP each session
    root.setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
    logging.getLogger("calflow").setLevel(level.upper())
