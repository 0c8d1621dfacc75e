"""Does a workflow's trigger match a booking event? Every filter given must hold."""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase

from calflow.events.model import BookingEvent
from calflow.workflows import templates
from calflow.workflows.definition import Trigger


def matches(
    trigger: Trigger, event: BookingEvent, integration_names: Mapping[str, str] | None = None
) -> tuple[bool, str | None]:
    """``(True, None)``, ``(False, None)``, or ``(False, reason)`` when ``when`` cannot run."""
    if event.kind not in trigger.kinds:
        return False, None
    if trigger.providers and event.provider not in trigger.providers:
        return False, None
    if trigger.sources and event.source not in trigger.sources:
        return False, None
    if trigger.integrations:
        names = {event.integration_id or ""}
        if event.integration_id and integration_names:
            names.add(integration_names.get(event.integration_id, ""))
        if not names & set(trigger.integrations):
            return False, None
    if trigger.event_types:
        et = event.event_type
        refs = {et.id, et.slug} if et else set()
        if not refs & set(trigger.event_types):
            return False, None
    has_phone = trigger.attendee_has_phone
    if has_phone is not None and bool(event.phones) != has_phone:
        return False, None
    if trigger.attendee_email:
        pattern = trigger.attendee_email.lower()
        emails = [(a.email or "").lower() for a in event.attendees]
        if not any(fnmatchcase(e, pattern) for e in emails):
            return False, None
    if trigger.when:
        try:
            if not templates.evaluate(trigger.when, templates.context(event), "trigger.when"):
                return False, None
        except templates.TemplateProblem as exc:
            return False, str(exc)
    return True, None
