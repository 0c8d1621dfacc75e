"""Normalizers: a provider's webhook delivery, or a booking change one of calflow's
actions made, → one :class:`~calflow.events.model.BookingEvent`.

``normalize(provider, body)`` takes a parsed delivery body of ``cal_com`` or
``savvycal``; ``from_action(change)`` takes the ``BookingChange`` an action reported.
Both give the same dedupe key for the same booking change.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from calflow.errors import ConfigError
from calflow.events.model import BookingEvent, Source
from calflow.events.normalize.action import from_action
from calflow.events.normalize.calcom import normalize_calcom
from calflow.events.normalize.common import check_source, received
from calflow.events.normalize.savvycal import normalize_savvycal

PROVIDERS = ("cal_com", "savvycal")


def normalize(
    provider: str,
    body: Mapping[str, Any],
    *,
    source: Source = "webhook",
    integration_id: str | None = None,
    received_at: datetime | None = None,
) -> BookingEvent:
    """The event for one webhook delivery body of ``provider`` (``cal_com``, ``savvycal``).

    Raises ``ValidationError`` when ``body`` is not a delivery of that provider (not an
    object, no ``triggerEvent`` / ``type``, a payload that is not an object), and
    ``ConfigError`` for a provider without a normalizer. A delivery of a type calflow
    does not know is never an error: it becomes kind ``other``.
    """
    checked = check_source(source)
    at = received(received_at)
    if provider == "cal_com":
        return normalize_calcom(body, source=checked, integration_id=integration_id, received_at=at)
    if provider == "savvycal":
        return normalize_savvycal(
            body, source=checked, integration_id=integration_id, received_at=at
        )
    raise ConfigError(f"no normalizer for provider {provider!r} (known: {', '.join(PROVIDERS)})")


__all__ = ["PROVIDERS", "from_action", "normalize"]
