"""Where a request goes and with which headers: URL (absolute, or under the integration's
``base_url``), query merged into it, the address check, and the integration's secret headers.

The secret headers stay where they were given: when the integration has a ``base_url``
they are sent only to URLs on its origin (scheme, host and port); a step URL elsewhere
is refused rather than sent without them or with them. An integration without a
``base_url`` sends its headers to any URL its steps name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from calflow.errors import ConfigError, FieldError, ValidationError
from calflow.flowapp import ActionContext
from calflow.netpolicy import check_target, tenant_allowance


def _invalid(path: str, message: str) -> ValidationError:
    return ValidationError(f"{path}: {message}", [FieldError(path, message, "url")])


def secret_headers(raw: Any) -> dict[str, str]:
    """The integration's ``headers``: a JSON object, or ``Name: value`` lines."""
    if raw in (None, ""):
        return {}
    text = str(raw).strip()
    if text.startswith("{"):
        try:
            found = json.loads(text)
        except ValueError:
            raise ConfigError("the integration's headers are not a valid JSON object") from None
        if not isinstance(found, dict):
            raise ConfigError("the integration's headers must be a JSON object")
        return {str(k): str(v) for k, v in found.items()}
    out: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if not line.strip():
            continue
        if not sep or not name.strip():
            # the value may be a secret: name the line's position, never its text
            raise ConfigError("each line of the integration's headers must be 'Name: value'")
        out[name.strip()] = value.strip()
    return out


def _query_items(query: Mapping[str, Any]) -> dict[str, str | list[str]]:
    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return {
        k: [text(v) for v in value] if isinstance(value, list) else text(value)
        for k, value in query.items()
    }


async def resolve_url(data: Mapping[str, Any], ctx: ActionContext) -> httpx.URL:
    """The URL to call, query merged, after the address check: a non-public address only
    when the integration sets ``allow_private`` and the operator allows the address."""
    raw = str(data["url"]).strip()
    if "://" not in raw:
        base = str(ctx.value("base_url") or "").rstrip("/")
        if not base:
            raise _invalid("url", "is not absolute and the integration has no base_url")
        raw = f"{base}/{raw.lstrip('/')}"
    allowance = tenant_allowance(ctx.value("allow_private"), ctx.targets)
    checked = await check_target(raw, field="url", allowance=allowance, with_flag=ctx.targets)
    try:
        url = httpx.URL(checked)
    except httpx.InvalidURL as exc:
        raise _invalid("url", f"is not a valid URL ({exc})") from None
    query = data.get("query")
    return url.copy_merge_params(_query_items(query)) if query else url


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = 443 if url.scheme == "https" else 80
    return url.scheme, url.host.lower(), url.port or default


def request_headers(
    data: Mapping[str, Any], ctx: ActionContext, url: httpx.URL | None = None
) -> dict[str, str]:
    """The integration's secret headers, then the step's (a step's header wins); a
    ``ValidationError`` naming ``url`` when the headers would leave the ``base_url``'s
    origin."""
    own = secret_headers(ctx.value("headers"))
    base = str(ctx.value("base_url") or "").strip()
    if own and base and url is not None:
        try:
            home = httpx.URL(base)
        except httpx.InvalidURL:
            home = None
        if home is None or _origin(home) != _origin(url):
            why = (
                "is not under the integration's base_url, and its secret headers are only "
                "sent there; call a URL under base_url, or use an integration without headers"
            )
            raise _invalid("url", why)
    merged = {k.lower(): (k, v) for k, v in own.items()}
    merged.update({k.lower(): (k, str(v)) for k, v in (data.get("headers") or {}).items()})
    return dict(merged.values())
