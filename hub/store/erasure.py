"""Deleted personal data overwritten in the SQLite file, not only unlinked from it.

SQLite leaves deleted rows in free pages unless ``secure_delete`` is on, and whether it
is on by default depends on how the library was built (Debian's is; others are not).
Retention deletes health data and encrypted numbers, so it turns the setting on itself
for its statements and puts back the connection's previous one afterwards: the pooled
connection goes on as it was. PostgreSQL keeps deleted rows as dead tuples until
``VACUUM`` (docs/privacy.md); there is nothing to set per statement.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection


@contextmanager
def overwritten(connection: Connection) -> Iterator[None]:
    """While inside, what ``connection`` deletes or rewrites is overwritten in the file."""
    if connection.dialect.name != "sqlite":
        yield
        return
    before = connection.exec_driver_sql("PRAGMA secure_delete").scalar()
    connection.exec_driver_sql("PRAGMA secure_delete = ON")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA secure_delete = {int(before or 0)}")
