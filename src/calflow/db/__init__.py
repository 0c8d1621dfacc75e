"""calflow's database: engines, migrations and the table models.

``open_engine()`` is the usual entry point: the engine of the configured
database, migrated to the newest schema.
"""

from calflow.db.engine import (
    MIGRATIONS_DIR,
    current_revision,
    downgrade,
    get_engine,
    migrate,
    open_engine,
    reset_engines,
    write_transaction,
)
from calflow.db.models import DEFAULT_WORKSPACE, Base, IntegrationRow

__all__ = [
    "DEFAULT_WORKSPACE",
    "MIGRATIONS_DIR",
    "Base",
    "IntegrationRow",
    "current_revision",
    "downgrade",
    "get_engine",
    "migrate",
    "open_engine",
    "reset_engines",
    "write_transaction",
]
