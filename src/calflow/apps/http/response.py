"""Reading a response into a result: status, headers, a capped body, JSON when it is JSON."""

from __future__ import annotations

import json
from typing import Any

import httpx

#: The most body bytes read from a response; the rest is dropped and ``truncated`` set.
MAX_BODY_BYTES = 256 * 1024
_TEXTUAL = ("text/", "application/xml", "application/javascript", "application/x-www-form")


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def _is_text(content_type: str) -> bool:
    return not content_type or content_type.startswith(_TEXTUAL) or content_type.endswith("+xml")


async def read_capped(response: httpx.Response, cap: int = MAX_BODY_BYTES) -> tuple[bytes, bool]:
    """Up to ``cap`` bytes of the (decoded) body, and whether more was left unread."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        if size + len(chunk) > cap:
            chunks.append(chunk[: cap - size])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


def headers_dict(headers: httpx.Headers) -> dict[str, str]:
    """Lower-cased names; repeated headers joined with ``, `` (``set-cookie`` with ``\\n``)."""
    out: dict[str, str] = {}
    for name, value in headers.multi_items():
        key = name.lower()
        sep = "\n" if key == "set-cookie" else ", "
        out[key] = f"{out[key]}{sep}{value}" if key in out else value
    return out


def body_of(response: httpx.Response, raw: bytes, truncated: bool) -> dict[str, Any]:
    """``body`` (parsed JSON, or text), ``body_bytes``, ``truncated`` and ``content_type``."""
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    out: dict[str, Any] = {
        "content_type": content_type or None,
        "body_bytes": len(raw),
        "truncated": truncated,
    }
    if _is_json(content_type) and not truncated and raw.strip():
        try:
            out["body"] = json.loads(raw)
            return out
        except ValueError:
            pass
    if _is_json(content_type) or _is_text(content_type):
        out["body"] = raw.decode(response.encoding or "utf-8", errors="replace")
    else:
        out["body"] = None  # binary: only its size is reported
    return out
