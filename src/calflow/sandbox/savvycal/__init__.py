"""Faithful in-memory SavvyCal API v1 simulator (mounted at ``/savvycal``).

Endpoints: ``GET /v1/me``; ``GET /v1/events`` (period/state/attendance/direction/link
filters, cursor pagination), ``GET /v1/events/{id}``, ``POST /v1/events/{id}/cancel``;
``GET /v1/links``, ``GET /v1/links/{id}``, ``GET /v1/links/{id}/slots``,
``POST /v1/links/{id}/events``; ``GET/POST /v1/webhooks``, ``GET/DELETE
/v1/webhooks/{id}``; ``POST /oauth/token`` (refresh-token grant). Controls under
``/_sandbox/savvycal``: web booking, approve/decline, reschedule, change, one attendee
added / canceled / rescheduled (``event.attendee.*``), flush.
"""

from calflow.sandbox.savvycal.simulator import SavvycalSimulator

__all__ = ["SavvycalSimulator"]
