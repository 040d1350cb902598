"""Alembic environment for the SQL storage schema (``storage/schema.py``).

There is no ``alembic.ini``: :func:`ostiary.storage.sql.SqlStorage.initialize` builds the
Alembic ``Config`` in code and hands over an open connection in
``config.attributes["connection"]``, already inside the transaction (and, on PostgreSQL,
the advisory lock) that serialises concurrent upgrades.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from ostiary.storage.schema import VERSION_TABLE, metadata


def run_migrations(connection: Connection) -> None:
    """Run every pending revision on ``connection`` inside its current transaction."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise RuntimeError("ostiary migrations run through SqlStorage.initialize(), not the CLI")
run_migrations(_connection)
