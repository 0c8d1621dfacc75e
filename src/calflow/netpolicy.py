"""Which non-public addresses calflow may call: the operator's decision, never a tenant's.

Every URL a tenant can set (a provider integration's ``base_url``, the email app's SMTP
``host``, an ``http.Request`` step's URL, a replay target, a webhook URL to register) is
checked here, when it is saved and again before each call. A URL whose host is, or
resolves to, an address that is not public (loopback, private, link-local such as the
metadata address 169.254.169.254, CGNAT, multicast, reserved) is refused unless the
operator's :class:`Allowance` covers it:

- ``CALFLOW_ALLOW_PRIVATE`` in the server's environment: a comma-separated list of
  networks (``10.0.0.0/8``), addresses (``127.0.0.1``) or host names (``cal.lan``);
  ``*`` allows every non-public address. Empty (the default): none.
- the CLI's ``--allow-private`` (:data:`EVERYTHING`): the operator on the machine.

A tenant's own ``allow_private`` (the API's replay option, the http app's field) is a
request honoured only inside the operator's allowance (:func:`tenant_allowance`).
The syntax checks (http/https only, no credentials in the URL) and the meaning of
"public" are :mod:`calflow.netguard`'s.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from calflow.errors import ConfigError, FieldError, ValidationError
from calflow.netguard import check_url, check_url_sync, is_public_address
from calflow.settings import Settings, get_settings

__all__ = [
    "EVERYTHING",
    "NOTHING",
    "SETTING",
    "TARGET_FIELDS",
    "Allowance",
    "binding",
    "check_fields",
    "check_fields_sync",
    "check_host",
    "check_host_sync",
    "check_target",
    "check_target_sync",
    "integration_allowance",
    "is_empty",
    "operator_allowance",
    "parse_allowance",
    "permits",
    "tenant_allowance",
]

SETTING = "CALFLOW_ALLOW_PRIVATE"
"""The environment variable through which the operator allows non-public targets."""

TARGET_FIELDS = ("base_url", "host")
"""Integration fields that say where the integration's calls (and its secrets) go."""

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Allowance:
    """Non-public targets that may be called: networks, host names, or everything.

    Only these three fields are used (:func:`permits`, :func:`is_empty`), so a
    connect-time guard can take the same allowance."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)
    """Lower-cased host names, without a trailing dot."""
    everything: bool = False


def is_empty(allowance: Allowance) -> bool:
    """Whether ``allowance`` allows no non-public target at all."""
    return not (allowance.everything or allowance.networks or allowance.hosts)


def permits(allowance: Allowance, host: str, address: str) -> bool:
    """Whether ``address`` (an IP literal that ``host`` resolved to) may be called."""
    if allowance.everything or _name(host) in allowance.hosts:
        return True
    try:
        addr = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in allowance.networks if net.version == addr.version)


NOTHING = Allowance()
"""Public addresses only."""

EVERYTHING = Allowance(everything=True)
"""Any address: the operator's ``--allow-private`` on the CLI."""


def _name(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


def parse_allowance(text: str | None) -> Allowance:
    """The allowance ``CALFLOW_ALLOW_PRIVATE`` describes; ``ConfigError`` naming a bad entry."""
    networks: list[IPNetwork] = []
    hosts: set[str] = set()
    for raw in (text or "").split(","):
        entry = raw.strip()
        if not entry:
            continue
        if entry == "*":
            return EVERYTHING
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        name = _name(entry)
        if "/" in name or not all(part and _label_ok(part) for part in name.split(".")):
            raise ConfigError(
                f"invalid settings: {SETTING}: {entry!r} is neither a network (10.0.0.0/8), "
                "an address nor a host name"
            )
        hosts.add(name)
    return Allowance(tuple(networks), frozenset(hosts))


def _label_ok(label: str) -> bool:
    return len(label) <= 63 and all(c.isalnum() or c in "-_" for c in label)


def operator_allowance(settings: Settings | None = None) -> Allowance:
    """What the operator allows in this process (``CALFLOW_ALLOW_PRIVATE``)."""
    return parse_allowance((settings or get_settings()).allow_private)


def tenant_allowance(
    requested: Any, operator: Allowance, field: str = "allow_private"
) -> Allowance:
    """What a tenant who asked for ``allow_private`` gets: nothing unless asked, and
    never more than the operator allows; asking when the operator allows nothing is a
    ``ValidationError`` naming ``field`` and the setting."""
    if not _truthy(requested):
        return NOTHING
    if is_empty(operator):
        why = (
            f"private targets are the operator's decision: the server allows none "
            f"(the operator lists the allowed networks or hosts in {SETTING})"
        )
        raise ValidationError(f"{field}: {why}", [FieldError(field, why, "operator_only")])
    return operator


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() not in ("", "false", "0", "no", "off")


def integration_allowance(values: Mapping[str, Any], operator: Allowance) -> Allowance:
    """An integration's allowance: the operator's, narrowed by the integration's own
    ``allow_private`` field when its app declares one (the http app)."""
    if "allow_private" in values:
        return tenant_allowance(values["allow_private"], operator)
    return operator


def _kind(address: str) -> str:
    """What sort of non-public address ``address`` is (the rule it breaks)."""
    try:
        addr = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "an invalid"
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    for test, name in (
        (addr.is_loopback, "a loopback"),
        (addr.is_link_local, "a link-local"),
        (addr.is_multicast, "a multicast"),
        (addr.is_unspecified, "an unspecified"),
        (addr in _SHARED, "a shared (CGNAT)"),
        (addr.is_private, "a private"),
    ):
        if test:
            return name
    return "a reserved"


_SHARED = ipaddress.ip_network("100.64.0.0/10")


def _refused(
    field: str,
    url: str,
    host: str,
    bad: list[str],
    with_flag: Allowance | None,
    flag_text: str,
) -> ValidationError:
    kinds = " / ".join(sorted({_kind(a) for a in bad}))
    listed = ", ".join(sorted(set(bad)))
    if with_flag is not None and all(permits(with_flag, host, a) for a in bad):
        how = f"pass {flag_text} to call it (the operator allows this address)"
    else:
        how = f"only the operator can allow it, by adding {host!r} or its network to {SETTING}"
        if with_flag is not None:
            how += f", with {flag_text}"
    why = f"host {host!r} is {kinds} address ({listed}), not a public one; {how}"
    return ValidationError(
        f"{field} {url!r} is refused: {why}", [FieldError(field, why, "private_address")]
    )


def _literal(host: str) -> list[str] | None:
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        return None


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def _judge(
    url: str,
    field: str,
    host: str,
    addresses: list[str],
    allowance: Allowance,
    with_flag: Allowance | None,
    flag_text: str,
) -> None:
    bad = [a for a in addresses if not is_public_address(a) and not permits(allowance, host, a)]
    if bad:
        raise _refused(field, url, host, bad, with_flag, flag_text)


async def check_target(
    url: str,
    *,
    field: str,
    allowance: Allowance,
    with_flag: Allowance | None = None,
    unresolvable_ok: bool = False,
    flag_text: str = "allow_private=true",
) -> str:
    """``url`` stripped, or a ``ValidationError`` naming ``field``, the rule and the setting
    that would allow it. ``with_flag``: the caller has an ``allow_private`` of its own, and
    this is what setting it would allow (the refusal says which of the two to change), and
    ``flag_text`` how the caller spells it (``--allow-private`` on the CLI).
    ``unresolvable_ok``: a name that does not resolve now passes (the call itself will
    fail and be retried; the connection is checked again)."""
    checked = await check_url(url, allow_private=True, field=field)
    host, port = _host_port(checked)
    if allowance.everything:
        return checked
    addresses = _literal(host)
    if addresses is None:
        if _name(host) in allowance.hosts:
            return checked
        try:
            addresses = await _resolve(host, port)
        except OSError as exc:
            if unresolvable_ok:
                return checked
            raise _unresolved(field, url, host, exc) from None
    _judge(url, field, host, addresses, allowance, with_flag, flag_text)
    return checked


_RESOLVED: dict[tuple[str, int], tuple[float, list[str]]] = {}
_RESOLVED_TTL_S = 10.0


async def _resolve(host: str, port: int) -> list[str]:
    """The addresses of ``host``, remembered for a few seconds: a workflow calling one
    provider many times a second asks the resolver once. (This check is policy, not the
    rebinding defence: the connection resolves the name again, a gap the outbound HTTP
    stack of issue #15 closes by checking the address the connection uses.)"""
    now = time.monotonic()
    hit = _RESOLVED.get((host, port))
    if hit is not None and hit[0] > now:
        return hit[1]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [str(info[4][0]) for info in infos]
    if len(_RESOLVED) > 1024:
        _RESOLVED.clear()
    _RESOLVED[(host, port)] = (now + _RESOLVED_TTL_S, addresses)
    return addresses


def check_target_sync(
    url: str,
    *,
    field: str,
    allowance: Allowance,
    with_flag: Allowance | None = None,
    unresolvable_ok: bool = False,
    flag_text: str = "allow_private=true",
) -> str:
    """:func:`check_target` for code without an event loop."""
    checked = check_url_sync(url, allow_private=True, field=field)
    host, port = _host_port(checked)
    if allowance.everything:
        return checked
    addresses = _literal(host)
    if addresses is None:
        if _name(host) in allowance.hosts:
            return checked
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            if unresolvable_ok:
                return checked
            raise _unresolved(field, url, host, exc) from None
        addresses = [str(info[4][0]) for info in infos]
    _judge(url, field, host, addresses, allowance, with_flag, flag_text)
    return checked


def _unresolved(field: str, url: str, host: str, exc: OSError) -> ValidationError:
    why = f"host {host!r} cannot be resolved ({exc})"
    return ValidationError(f"{field} {url!r} is refused: {why}", [FieldError(field, why, "url")])


def _host_url(host: str, field: str) -> str:
    text = str(host).strip()
    if not text or any(c in text for c in "/@?# ") or "://" in text:
        why = "must be a host name or address (smtp.example.com), not a URL"
        raise ValidationError(f"{field}: {why}", [FieldError(field, why, "host")])
    return f"https://[{text}]" if ":" in text and not text.startswith("[") else f"https://{text}"


async def check_host(
    host: str, *, field: str, allowance: Allowance, unresolvable_ok: bool = False
) -> str:
    """A bare host name (the SMTP server), checked like :func:`check_target`'s URL host."""
    url = _host_url(host, field)
    await check_target(url, field=field, allowance=allowance, unresolvable_ok=unresolvable_ok)
    return str(host).strip()


def check_host_sync(
    host: str, *, field: str, allowance: Allowance, unresolvable_ok: bool = False
) -> str:
    """:func:`check_host` for code without an event loop."""
    url = _host_url(host, field)
    check_target_sync(url, field=field, allowance=allowance, unresolvable_ok=unresolvable_ok)
    return str(host).strip()


def _targets(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(k, str(values[k]).strip()) for k in TARGET_FIELDS if values.get(k) not in (None, "")]


def binding(values: Mapping[str, Any]) -> str:
    """Where an integration with these fields sends its secrets: the text its secrets are
    bound to when saved (a change of ``base_url`` or ``host`` changes it)."""
    return json.dumps({k: v.rstrip("/") for k, v in _targets(values)}, sort_keys=True)


def check_fields_sync(values: Mapping[str, Any], operator: Allowance) -> None:
    """An integration's target fields (``base_url``, ``host``), checked as they are saved:
    a ``ValidationError`` naming the field. A name that does not resolve now is kept
    (it is checked again before each call)."""
    allowance = integration_allowance(values, operator)
    flag = operator if "allow_private" in values else None
    for key, value in _targets(values):
        if key == "host":
            check_host_sync(value, field=key, allowance=allowance, unresolvable_ok=True)
        else:
            check_target_sync(
                value, field=key, allowance=allowance, with_flag=flag, unresolvable_ok=True
            )


async def check_fields(values: Mapping[str, Any], operator: Allowance) -> None:
    """:func:`check_fields_sync` before a call (the address may have changed since)."""
    allowance = integration_allowance(values, operator)
    flag = operator if "allow_private" in values else None
    for key, value in _targets(values):
        if key == "host":
            await check_host(value, field=key, allowance=allowance, unresolvable_ok=True)
        else:
            await check_target(
                value, field=key, allowance=allowance, with_flag=flag, unresolvable_ok=True
            )
