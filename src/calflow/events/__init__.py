"""The event bus: normalized booking events entering through one door, once."""

from calflow.events.model import KINDS, SOURCES, BookingEvent, EventType, Person, Source

__all__ = ["KINDS", "SOURCES", "BookingEvent", "EventType", "Person", "Source"]
