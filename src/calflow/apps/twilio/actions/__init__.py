"""The Twilio app's actions."""
