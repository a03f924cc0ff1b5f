"""Helpers of the database-away tests: PostgreSQL ending a connection of the hub's at a
chosen moment, as a restart, a fail-over or a DBA's ``pg_terminate_backend`` does.

The cut is made from a second connection, on the backend of the connection the hub is
using at that moment, and waited for, so the statement that follows is the first to meet
a closed connection: the same every run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import pytest
from pg_support import PG_ENV
from sqlalchemy import Engine, create_engine, event, text

POSTGRES_ONLY = pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@cache
def _second() -> Engine:
    """The second connection's engine, on the server's URL (no test schema), kept; each
    statement its own transaction, so pg_stat_activity is read afresh each time."""
    return create_engine(os.environ[PG_ENV], pool_size=1, isolation_level="AUTOCOMMIT")


def end_backend(dbapi_connection: Any) -> None:
    """The server ends ``dbapi_connection`` (a psycopg connection of the hub's), and it is
    gone when this returns (``pg_terminate_backend``'s own wait looks every 100 ms)."""
    pid = dbapi_connection.info.backend_pid
    with _second().connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        for _ in range(5000):
            alive = text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid")
            if conn.execute(alive, {"pid": pid}).first() is None:
                return
            time.sleep(0.001)
    raise AssertionError("the backend did not end")


def end_session_backend(session: Any) -> None:
    """The server ends the connection ``session`` (an ORM session) is using."""
    end_backend(session.connection().connection.dbapi_connection)


@contextmanager
def cut_before(
    engine: Engine | type[Engine], statement: Callable[[str], bool], *, times: int = 1
) -> Iterator[list[str]]:
    """While the block runs, the server ends the connection just before the first
    ``times`` statements SQLAlchemy sends for which ``statement(sql)`` is true; the list
    holds those statements (to assert that the cut was made). ``engine`` may be the class
    ``Engine``: every engine's, such as a command's run in this process."""
    cut: list[str] = []

    def before(conn: Any, _cursor: Any, sql: str, _params: Any, _context: Any, _many: bool) -> None:
        if len(cut) < times and statement(sql):
            cut.append(sql)
            end_backend(conn.connection.dbapi_connection)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield cut
    finally:
        event.remove(engine, "before_cursor_execute", before)


@contextmanager
def counted(engine: Engine) -> Iterator[list[str]]:
    """The statements SQLAlchemy sends while the block runs."""
    sent: list[str] = []

    def before(
        _conn: Any, _cursor: Any, sql: str, _params: Any, _context: Any, _many: bool
    ) -> None:
        sent.append(sql)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", before)


def nth(n: int) -> Callable[[str], bool]:
    """A ``statement`` test for :func:`cut_before`: the ``n``-th statement (from 1)."""
    seen = [0]

    def test(_sql: str) -> bool:
        seen[0] += 1
        return seen[0] == n

    return test
