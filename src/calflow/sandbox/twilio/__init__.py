"""Twilio Messages simulator (mounted at ``/twilio``)."""

from calflow.sandbox.twilio.simulator import TwilioSimulator

__all__ = ["TwilioSimulator"]
