"""``calflow demo``: bookings turn into SMS and email within a minute, all offline.

One process runs the provider sandbox (Cal.com, Twilio, an SMTP sink), calflow's
webhook receiver and its workflow engine on the embedded SQLite default; the demo
sets up integrations, the Cal.com webhook and the ready-made workflows (with seconds
instead of hours), then books, reschedules and cancels while it narrates what calflow
does: events arriving (and duplicates collapsing), runs scheduled, moved and
cancelled, and the messages the sandbox receives.
"""

from __future__ import annotations

from calflow.demo.run import run_demo

__all__ = ["run_demo"]
