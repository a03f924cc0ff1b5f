"""Driver-level bulk statements for the nightly sync's hot tables: records and outbox rows.

SQLAlchemy Core's ``executemany`` sends every row's parameters through each column type's
bind processor in Python (JSON serialisation, datetime conversion, parameter dicts), which
on the sync's hot path cost more than the database's own insert. These statements take
parameters already in the driver's form (tuples; times and JSON as the column types would
have written them) and go straight to ``exec_driver_sql``, as the ledger writer does.

The values written are the ones the ORM tables read back: on SQLite a time is the text
SQLAlchemy's ``DATETIME`` writes (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC) and JSON is text;
on PostgreSQL times are aware datetimes and JSON is cast from text. Only table and column
names from :mod:`hub.store.tables` go into the SQL, never input.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, CursorResult, Dialect

RECORD_COLUMNS = (
    "source",
    "source_id",
    "participant_id",
    "kind",
    "category",
    "updated_at",
    "body",
    "payload_sha256",
    "restricted",
    "unmapped",
    "mapping_version",
    "stored_at",
    "referring_party",
)
"""Columns of ``record`` in the order :func:`insert_records` takes them."""

OUTBOX_COLUMNS = (
    "idempotency_key",
    "record_id",
    "participant_id",
    "origin",
    "recipient",
    "purpose",
    "category",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
)
"""Columns of ``outbox`` in the order :func:`insert_outbox` takes them."""

_JSON_COLUMNS = frozenset({"body", "unmapped"})


@cache
def time_binder(dialect: Dialect) -> Any:
    """A function turning an aware datetime into this dialect's ``UTCDateTime`` parameter."""
    if dialect.name == "sqlite":
        return _sqlite_time
    return _aware_utc


def read_time(value: Any) -> datetime:
    """A ``UTCDateTime`` column as the driver returned it, as an aware UTC datetime."""
    if isinstance(value, str):  # SQLite: the text SQLAlchemy wrote, in UTC
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
    return value.astimezone(UTC)  # type: ignore[no-any-return]


def read_json(value: Any) -> Any:
    """A JSON column as the driver returned it (text on SQLite, decoded on PostgreSQL)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _sqlite_time(value: datetime) -> str:
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a timezone")
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column; attach a timezone")
    return value.astimezone(UTC)


@cache
def _insert_sql(dialect: Dialect, table: str, columns: tuple[str, ...]) -> str:
    mark = placeholder(dialect)
    json_mark = mark if dialect.name == "sqlite" else f"CAST({mark} AS JSON)"
    marks = ", ".join(json_mark if c in _JSON_COLUMNS else mark for c in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608


@cache
def _update_sql(dialect: Dialect, table: str, columns: tuple[str, ...]) -> str:
    mark = placeholder(dialect)
    json_mark = mark if dialect.name == "sqlite" else f"CAST({mark} AS JSON)"
    sets = ", ".join(f"{c} = {json_mark if c in _JSON_COLUMNS else mark}" for c in columns)
    return f"UPDATE {table} SET {sets} WHERE id = {mark}"  # noqa: S608


def insert_records(connection: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``record`` rows, each a tuple in :data:`RECORD_COLUMNS` order."""
    if rows:
        connection.exec_driver_sql(_insert_sql(connection.dialect, "record", RECORD_COLUMNS), rows)


def update_records(connection: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rewrite ``record`` rows: each tuple in :data:`RECORD_COLUMNS` order, then the id."""
    if rows:
        connection.exec_driver_sql(_update_sql(connection.dialect, "record", RECORD_COLUMNS), rows)


def insert_outbox(connection: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``outbox`` rows, each a tuple in :data:`OUTBOX_COLUMNS` order."""
    if rows:
        connection.exec_driver_sql(_insert_sql(connection.dialect, "outbox", OUTBOX_COLUMNS), rows)


def upsert_cursor(connection: Connection, connector: str, cursor: str, when: Any) -> None:
    """Set ``connector``'s sync cursor (``when`` as :func:`time_binder` gives it)."""
    mark = placeholder(connection.dialect)
    connection.exec_driver_sql(
        f"INSERT INTO sync_cursor (connector, cursor, updated_at) VALUES ({mark}, {mark}, {mark}) "  # noqa: S608 - placeholders only
        "ON CONFLICT (connector) DO UPDATE SET cursor = excluded.cursor, "
        "updated_at = excluded.updated_at",
        (connector, cursor, when),
    )


def execute_in(
    connection: Connection,
    statement: str,
    values: Sequence[Any],
    params: Sequence[Any] = (),
    *,
    chunk: int = 500,
) -> None:
    """Run ``statement`` for every value in ``values`` in chunks, like :func:`rows_in`."""
    for _ in _in_chunks(connection, statement, values, params, chunk):
        pass


def rows_in(
    connection: Connection,
    query: str,
    values: Sequence[Any],
    params: Sequence[Any] = (),
    *,
    chunk: int = 500,
) -> list[tuple[Any, ...]]:
    """Rows of ``query`` for every value in ``values``, asked in chunks.

    ``query`` is SQL with ``{marks}`` where the list of an ``IN (…)`` goes and the
    driver's placeholder written as ``?`` for each of ``params``, which come before the
    values (``SELECT id FROM record WHERE source = ? AND source_id IN ({marks})``).
    """
    rows: list[tuple[Any, ...]] = []
    for result in _in_chunks(connection, query, values, params, chunk):
        rows.extend(result.fetchall())
    return rows


def _in_chunks(
    connection: Connection, sql: str, values: Sequence[Any], params: Sequence[Any], chunk: int
) -> Iterator[CursorResult[Any]]:
    mark = placeholder(connection.dialect)
    template = sql.replace("?", mark)
    for start in range(0, len(values), chunk):
        part = values[start : start + chunk]
        statement = template.format(marks=", ".join([mark] * len(part)))
        yield connection.exec_driver_sql(statement, (*params, *part))


def placeholder(dialect: Dialect) -> str:
    """The driver's parameter mark: ``?`` (sqlite3) or ``%s`` (psycopg)."""
    return "?" if dialect.paramstyle == "qmark" else "%s"
