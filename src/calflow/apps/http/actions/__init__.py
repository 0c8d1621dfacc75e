"""The http app's actions."""
