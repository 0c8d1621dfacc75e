"""Alembic environment: runs calflow's migrations on the connection it is given.

:func:`calflow.db.migrate` passes an open connection (already inside a locked
transaction) in ``config.attributes["connection"]``. Without one, the
database of the current settings is used, so the ``alembic`` command line also
works with a config that sets ``script_location`` to this directory.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from calflow.db.models import Base

target_metadata = Base.metadata


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_offline() -> None:
    from calflow.settings import get_settings

    context.configure(
        url=get_settings().resolved_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if isinstance(connection, Connection):
        _configure_and_run(connection)
        return
    from calflow.db.engine import get_engine
    from calflow.settings import get_settings

    engine = get_engine(get_settings().resolved_database_url())
    with engine.connect() as conn:
        _configure_and_run(conn)
        conn.commit()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
