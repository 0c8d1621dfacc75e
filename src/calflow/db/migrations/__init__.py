"""Alembic migration environment for calflow (package data; applied by ``calflow.db.migrate``)."""
