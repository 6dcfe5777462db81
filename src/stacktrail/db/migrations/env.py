"""Alembic environment of the config store; run through `stacktrail.trails.db`.

`stacktrail.trails.db` passes an open (synchronous facade of an async) connection in
`config.attributes["connection"]`; no alembic.ini is involved.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from stacktrail.db.tables import metadata

config = context.config


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `stacktrail db upgrade` (stacktrail.db.engine.upgrade)")
run_migrations(connection)
