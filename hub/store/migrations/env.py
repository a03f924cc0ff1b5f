"""Alembic environment: always run from :mod:`hub.store.migrate` with a live connection."""

from __future__ import annotations

from alembic import context

import hub.store.tables  # noqa: F401  - registers every table on Base.metadata
from hub.store.base import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
