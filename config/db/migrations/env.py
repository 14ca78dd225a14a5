"""Alembic environment: run on the connection `config.db.migrate` hands over."""

from alembic import context
from sqlalchemy import text

from config.db.schema import metadata

connection = context.config.attributes["connection"]
if connection.dialect.name == "postgresql":  # two workers starting at once migrate one by one
    connection.execute(text("SELECT pg_advisory_xact_lock(4210815)"))
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
