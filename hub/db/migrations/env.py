"""Alembic's environment for evalhub: runs on the connection that hub.db.migrate hands over.

evalhub always calls Alembic with a connection inside its own write transaction
(``config.attributes["connection"]``), so the upgrade commits with the write that asked for it.
"""

from alembic import context

from hub.db.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
