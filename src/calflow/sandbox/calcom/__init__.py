"""Cal.com API v2 simulator (bookings, slots, event types, webhooks, /v2/me)."""

from calflow.sandbox.calcom.seed import DEMO_USERNAME, TEAM_SLUG
from calflow.sandbox.calcom.simulator import CalcomSimulator

__all__ = ["DEMO_USERNAME", "TEAM_SLUG", "CalcomSimulator"]
