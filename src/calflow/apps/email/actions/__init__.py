"""The email app's actions."""
