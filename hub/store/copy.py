"""`evi db copy --to URL`: move the hub from its database (normally the embedded SQLite)
into an empty PostgreSQL database, every row of every table, in one transaction.

* The source is read in one snapshot: on SQLite inside its write lock (``BEGIN
  IMMEDIATE``, after a turn at ``evi.db-writer``), so no sync, worker or web request can
  write while the copy runs (they wait, then fail, and keep nothing); on PostgreSQL in a
  ``REPEATABLE READ`` transaction. Before anything is read, ``guard`` runs (the command
  refuses while a sync holds a connector's lock).
* The target is written in one PostgreSQL transaction: the schema made by the hub's own
  Alembic migrations, the rows table by table in foreign-key order (``sorted_tables``),
  streamed in batches of ``batch_size`` (bounded memory at millions of log entries), the
  sequences set past the copied ids, the row counts compared, then ``check`` (the
  command verifies the transfer log there) before the commit. Anything that fails rolls
  it all back: the target is left as it was, never half-copied.
* A value PostgreSQL would refuse where SQLite took it (a text longer than its
  ``VARCHAR(n)``, a NUL character, a whole number beyond the column's range) is reported
  by table, column and row key, never by its value, and nothing is copied.

Refused before anything is written (:class:`ConfigError`, exit 2): a target that is not
PostgreSQL (``postgresql+psycopg://``), the configured database itself, a target that
already holds EVI hub data, and a source whose schema is not at this installation's
revision. A target someone already ran ``evi db upgrade`` on with this hub's keys (it
holds the schema and the keys' fingerprints, nothing else) is accepted as empty.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    SmallInteger,
    String,
    Table,
    delete,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, StatementError
from sqlalchemy.orm import Session

import hub.store.tables  # noqa: F401  - registers every table on Base.metadata
from hub.errors import ConfigError, StorageError
from hub.store.base import Base
from hub.store.db import Database, operational_problem, safe_url
from hub.store.migrate import HEAD, revision_problem, stored_revision
from hub.store.tables.meta import HubMeta

DRIVER: Final = "postgresql+psycopg"
BATCH_SIZE: Final = 1000
MAX_LISTED: Final = 20
"""At most this many refused values are listed (and how many more there were)."""

_COPY_LOCK: Final = 0x45564920434F5059  # "EVI COPY": two copies into one database take turns
_KEY_PREFIX: Final = "key:"

Progress = Callable[[str, int, int], None]
"""Called with (table, rows copied so far, rows in the table) after each batch."""


@dataclass(frozen=True)
class TableCopied:
    name: str
    rows: int


@dataclass
class CopyReport:
    source: str
    target: str
    revision: str
    tables: list[TableCopied] = field(default_factory=list)
    sequences: list[str] = field(default_factory=list)
    """``table.column`` of every sequence set past the copied ids."""
    schema_created: bool = True
    """False when the target already had the (empty) schema from `evi db upgrade`."""
    checked: str | None = None
    """What ``check`` found (the command: the transfer log verified on the target)."""

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


def target_url(url: str) -> URL:
    """``url`` parsed, or :class:`ConfigError` when it is no PostgreSQL URL of the driver the
    hub installs. The message never repeats the URL (it may hold a password)."""
    try:
        parsed = make_url(url.strip())
    except (ArgumentError, ValueError):
        raise ConfigError(
            "--to is not a database URL; give postgresql+psycopg://USER@HOST:PORT/DB"
        ) from None
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(
            f"--to must be a PostgreSQL database (postgresql+psycopg://USER@HOST:PORT/DB), not "
            f"'{parsed.get_backend_name()}': `evi db copy` moves the hub to PostgreSQL (a copy "
            "of a SQLite database is `evi db backup FILE`)"
        )
    if parsed.drivername != DRIVER:
        raise ConfigError(
            f"--to: write the URL as {DRIVER}://USER@HOST:PORT/DB (the driver EVI hub "
            f"installs, psycopg 3), not {parsed.drivername}://"
        )
    if not parsed.database:
        raise ConfigError("--to names no database; give postgresql+psycopg://USER@HOST:PORT/DB")
    return parsed


def _same_place(a: str, b: URL) -> bool:
    """Whether two URLs name the same database, passwords aside."""
    try:
        first = make_url(a)
    except (ArgumentError, ValueError):
        return False
    return first.set(password=None) == b.set(password=None)


def copy_database(
    source: Database,
    to: str,
    *,
    batch_size: int = BATCH_SIZE,
    guard: Callable[[], None] | None = None,
    check: Callable[[Session, Session], str] | None = None,
    progress: Progress | None = None,
) -> CopyReport:
    """Copy ``source`` into the PostgreSQL database at ``to`` (see the module docstring).

    ``guard`` runs once the source's snapshot is held, before anything is read or written;
    ``check`` gets (source session, target session) once every row is in, inside both
    transactions, and raises to roll the copy back."""
    url = target_url(to)
    shown = safe_url(url.render_as_string(hide_password=False))
    if _same_place(source.url, url):
        raise ConfigError(
            f"--to {shown} is the database this hub is configured with; give the new, empty "
            "PostgreSQL database"
        )
    source_revision = source_revision_of(source)
    target = _open_target(url, shown)
    try:
        with _snapshot(source) as reading:
            if guard is not None:
                guard()
            return _copy(
                reading,
                target,
                shown,
                source_revision=source_revision,
                batch_size=batch_size,
                check=check,
                progress=progress,
                source_url=safe_url(source.url),
            )
    finally:
        target.dispose()


# -- the source ------------------------------------------------------------------------


def source_revision_of(source: Database) -> str:
    """The source's schema revision; :class:`ConfigError` unless it is this installation's
    (a copy must carry the newest schema: `evi db upgrade` first)."""
    source.check_connection()
    with source.engine.connect() as conn:
        if not inspect(conn).has_table(HubMeta.__tablename__):
            raise ConfigError(
                f"the database at {safe_url(source.url)} has no EVI hub tables: there is "
                "nothing to copy (check EVI_HOME and EVI_DATABASE_URL)"
            )
        revision = stored_revision(conn)
    problem = revision_problem(revision)
    if problem is not None:
        raise ConfigError(f"cannot copy it: {problem}; then copy")
    assert revision is not None
    return revision


@contextmanager
def _snapshot(source: Database) -> Iterator[Session]:
    """One read transaction over the whole source, never committed (see the docstring)."""
    if source.dialect == "sqlite":
        with source.session(write_lock=True, dry_run=True) as session:
            yield session
        return
    with source.session(dry_run=True) as session:
        session.connection(
            execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        )
        yield session


# -- the target ------------------------------------------------------------------------


def _open_target(url: URL, shown: str) -> Database:
    rendered = url.render_as_string(hide_password=False)
    target = Database(rendered)
    try:
        with target.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        target.dispose()
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else "connection failed"
        if url.password:
            first = first.replace(str(url.password), "***")
        raise StorageError(
            f"cannot reach the target database at {shown}: {first}; check --to and that the "
            "server is running; nothing was copied"
        ) from None
    return target


def _copy(
    reading: Session,
    target: Database,
    shown: str,
    *,
    source_revision: str,
    batch_size: int,
    check: Callable[[Session, Session], str] | None,
    progress: Progress | None,
    source_url: str,
) -> CopyReport:
    source_conn = reading.connection()
    tables = Base.metadata.sorted_tables
    report = CopyReport(source=source_url, target=shown, revision=source_revision)
    counts = {t.name: _count(source_conn, t) for t in tables}
    marker = _source_marker(source_conn)
    try:
        with target.engine.connect() as conn, conn.begin():
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _COPY_LOCK})
            if marker is not None and _is_source(conn, marker):
                raise ConfigError(
                    f"--to {shown} is the database this hub is configured with (under another "
                    "name); give the new, empty PostgreSQL database"
                )
            stale_keys = _require_empty(conn, source_conn, shown)
            report.schema_created = stored_revision(conn) is None
            _migrate(conn, source_revision)
            if stale_keys:
                conn.execute(delete(HubMeta).where(HubMeta.key.in_(stale_keys)))
            refusals = _Refusals()
            for table in tables:
                count = counts[table.name]
                _copy_table(source_conn, conn, table, count, batch_size, progress, refusals)
                report.tables.append(TableCopied(table.name, count))
            refusals.raise_any()
            report.sequences = _reset_sequences(conn, tables)
            _compare_counts(conn, tables, counts)
            if check is not None:
                with Session(bind=conn) as checking:
                    report.checked = check(reading, checking)
    except (DBAPIError, StatementError) as exc:
        problem = operational_problem(exc) if isinstance(exc, OperationalError) else None
        side = "the source" if _on(exc, source_conn) else shown
        raise StorageError(
            f"the copy failed at {side} ({problem or _kind(exc)}); nothing was kept in {shown}"
        ) from None
    return report


def _on(exc: DBAPIError | StatementError, conn: Connection) -> bool:
    """Whether ``exc`` came from ``conn``'s database (by its dialect: the source is the
    one on SQLite; for two PostgreSQL databases it says nothing)."""
    orig = getattr(exc, "orig", None)
    module = type(orig).__module__ if orig is not None else ""
    return conn.dialect.name == "sqlite" and module.startswith("sqlite3")


def _count(conn: Connection, table: Table) -> int:
    return int(conn.scalar(select(func.count()).select_from(table)) or 0)


def _source_marker(conn: Connection) -> tuple[int, str] | None:
    """On a PostgreSQL source: a random advisory lock held by its snapshot, which the
    target looks for to tell whether it is the same database under another URL, and the
    schema it reads."""
    if conn.dialect.name != "postgresql":
        return None
    marker = secrets.randbits(62)
    conn.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": marker})
    return marker, str(conn.scalar(text("SELECT current_schema()")))


def _is_source(conn: Connection, found_by: tuple[int, str]) -> bool:
    marker, schema = found_by
    if conn.scalar(text("SELECT current_schema()")) != schema:
        return False
    found = conn.scalar(
        text(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND d.datname = current_database() "
            "AND l.classid = :high AND l.objid = :low AND l.objsubid = 1 "
            "AND l.pid <> pg_backend_pid()"
        ),
        {"high": marker >> 32, "low": marker & 0xFFFFFFFF},
    )
    return bool(found)


def _require_empty(conn: Connection, source: Connection, shown: str) -> list[str]:
    """Refuse a target that holds EVI hub data; returns the ``hub_meta`` keys `evi db
    upgrade` left there with this hub's keys, to be replaced by the source's."""
    hub_tables = {t.name: t for t in Base.metadata.sorted_tables}
    present = sorted(set(inspect(conn).get_table_names()) & set(hub_tables))
    revision = stored_revision(conn)
    if revision is None and present:
        raise ConfigError(
            f"the target database {shown} has tables named like EVI hub's "
            f"({', '.join(present[:5])}) but no schema revision: it is not empty; give a "
            "new, empty database"
        )
    if revision is not None and revision > HEAD:
        raise ConfigError(
            f"the target database {shown} is at revision {revision}, newer than this "
            f"installation knows ({HEAD}): it is not empty; give a new, empty database"
        )
    holding = {name: n for name in present if (n := _count(conn, hub_tables[name]))}
    stale: list[str] = []
    if HubMeta.__tablename__ in holding:
        there = {k: v for k, v in conn.execute(select(HubMeta.key, HubMeta.value))}
        ours = {k: v for k, v in source.execute(select(HubMeta.key, HubMeta.value))}
        if all(k.startswith(_KEY_PREFIX) for k in there):
            if any(ours.get(k) != v for k, v in there.items()):
                raise ConfigError(
                    f"the target database {shown} was set up (`evi db upgrade`) with other "
                    "keys than this hub's: give a new, empty database"
                )
            stale = sorted(there)
            del holding[HubMeta.__tablename__]
    if holding:
        named = sorted(holding.items(), key=lambda item: -item[1])
        listed = ", ".join(f"{name}: {n} rows" for name, n in named[:3])
        if len(named) > 3:
            listed += f", and {len(named) - 3} more tables"
        raise ConfigError(
            f"the target database {shown} already holds EVI hub data ({listed}); `evi db "
            "copy` fills only an empty database: give a new one (CREATE DATABASE … OWNER …, "
            "docs/operations.md); nothing was copied"
        )
    return stale


def _migrate(conn: Connection, revision: str) -> None:
    """The hub's own migrations up to the source's revision, inside the copy's transaction
    (PostgreSQL's DDL is transactional: a failed copy leaves no schema behind either)."""
    from alembic import command

    from hub.store.migrate import alembic_config

    command.upgrade(alembic_config(conn), revision)


# -- rows --------------------------------------------------------------------------------


Checker = Callable[[Any], str | None]


def _checkers(table: Table) -> dict[str, Checker]:
    """What PostgreSQL would refuse in each column that SQLite took."""
    found: dict[str, Checker] = {}
    for column in _copied_columns(table):  # computed ones are PostgreSQL's to fill in
        kind = column.type
        checks: list[Checker] = []
        impl = getattr(kind, "impl", kind)
        if isinstance(impl, String):
            checks.append(_no_nul)
            if impl.length is not None:
                checks.append(_at_most(impl.length))
        if isinstance(impl, Integer) and not isinstance(impl, BigInteger):
            bits = 16 if isinstance(impl, SmallInteger) else 32
            checks.append(_whole_within(bits))
        if checks:
            found[column.key] = _all_of(checks)
    return found


def _all_of(checks: Sequence[Checker]) -> Checker:
    def check(value: Any) -> str | None:
        for one in checks:
            if (problem := one(value)) is not None:
                return problem
        return None

    return check


def _no_nul(value: Any) -> str | None:
    if isinstance(value, str) and "\x00" in value:
        return "holds a NUL character, which PostgreSQL's text cannot"
    return None


def _at_most(length: int) -> Checker:
    def check(value: Any) -> str | None:
        if isinstance(value, str) and len(value) > length:
            return f"is {len(value)} characters long, longer than its VARCHAR({length})"
        return None

    return check


def _whole_within(bits: int) -> Checker:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def check(value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, int):
            return "is not a whole number"
        if not low <= value <= high:
            return f"is beyond the range of its {bits}-bit integer"
        return None

    return check


def _copied_columns(table: Table) -> list[Column[Any]]:
    """Every column but those the database computes (``ledger_entry.seq_block``)."""
    return [c for c in table.columns if c.computed is None]


class _Refusals:
    """Values PostgreSQL would refuse, gathered over every table (at most
    :data:`MAX_LISTED` listed); once there is one, no more rows are written."""

    def __init__(self) -> None:
        self.listed: list[str] = []
        self.more = 0

    def add(self, line: str) -> None:
        if len(self.listed) < MAX_LISTED:
            self.listed.append(line)
        else:
            self.more += 1

    def raise_any(self) -> None:
        if self.listed:
            raise RowsRefusedError(self.listed, self.more)


def _copy_table(
    source: Connection,
    target: Connection,
    table: Table,
    total: int,
    batch_size: int,
    progress: Progress | None,
    refusals: _Refusals,
) -> None:
    columns = _copied_columns(table)
    keys = [c.key for c in columns]
    checkers = _checkers(table)
    primary = list(table.primary_key.columns)
    statement = select(*columns).order_by(*primary)
    done = 0
    if progress is not None:
        progress(table.name, 0, total)
    try:
        result = source.execute(statement, execution_options={"yield_per": batch_size})
        for part in result.partitions():
            rows = [dict(zip(keys, row, strict=True)) for row in part]
            for row in rows:
                for key, check in checkers.items():
                    if (problem := check(row[key])) is not None:
                        where = ", ".join(f"{c.key}={row[c.key]}" for c in primary)
                        refusals.add(f"{table.name}.{key} ({where}) {problem}")
            if not refusals.listed:
                target.execute(insert(table), rows)
            done += len(rows)
            if progress is not None:
                progress(table.name, done, total)
    except (ValueError, TypeError) as exc:  # a stored value SQLite took but cannot be read
        raise StorageError(
            f"a row of table {table.name} could not be read ({type(exc).__name__}); nothing "
            "was copied; `evi db backup` the database and report this"
        ) from None


class RowsRefusedError(StorageError):
    """Values SQLite took that PostgreSQL would refuse; named by table, column and row key."""

    def __init__(self, refused: list[str], more: int) -> None:
        tail = f"; and {more} more" if more else ""
        super().__init__(
            "PostgreSQL would refuse what SQLite took, so nothing was copied: "
            + "; ".join(refused)
            + tail
            + " (the values are not shown; correct those rows in the source, or report this)"
        )
        self.refused = refused


def _reset_sequences(conn: Connection, tables: Sequence[Table]) -> list[str]:
    """Set each serial or identity column's sequence past the largest copied id, so the
    next insert does not collide with a copied row."""
    done = []
    for table in tables:
        primary = list(table.primary_key.columns)
        if len(primary) != 1 or not isinstance(primary[0].type, Integer):
            continue
        column = primary[0]
        sequence = conn.scalar(
            text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column.name}
        )
        if sequence is None:
            continue
        quoted = conn.dialect.identifier_preparer.quote
        # the names are the hub's own tables and columns, quoted
        largest = f"COALESCE(MAX({quoted(column.name)}), 0) + 1"
        source = quoted(table.name)
        statement = f"SELECT setval(CAST(:s AS regclass), {largest}, false) FROM {source}"  # noqa: S608
        conn.execute(text(statement), {"s": sequence})
        done.append(f"{table.name}.{column.name}")
    return done


def _compare_counts(conn: Connection, tables: Sequence[Table], counts: Mapping[str, int]) -> None:
    differ = [
        f"{t.name}: {counts[t.name]} in the source, {n} copied"
        for t in tables
        if (n := _count(conn, t)) != counts[t.name]
    ]
    if differ:
        raise StorageError(
            f"the copy's row counts differ ({'; '.join(differ)}); nothing was kept; report this"
        )


def _kind(exc: DBAPIError | StatementError) -> str:
    """What went wrong, in words with no part of the statement or its values: the driver's
    error class (e.g. ``StringDataRightTruncation``), PostgreSQL's SQLSTATE, and the
    table, column or constraint it names."""
    orig = getattr(exc, "orig", None)
    if orig is None:
        return type(exc).__name__
    named = [type(orig).__name__]
    if state := getattr(orig, "sqlstate", None):
        named.append(f"SQLSTATE {state}")
    diag = getattr(orig, "diag", None)
    for part in ("table_name", "column_name", "constraint_name"):
        if value := getattr(diag, part, None):
            named.append(f"{part.removesuffix('_name')} {value}")
    return ", ".join(named)


__all__ = [
    "BATCH_SIZE",
    "CopyReport",
    "RowsRefusedError",
    "TableCopied",
    "copy_database",
    "source_revision_of",
    "target_url",
]
