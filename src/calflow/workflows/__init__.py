"""Workflows: triggers on booking events and the steps they run, durably (DBOS)."""
