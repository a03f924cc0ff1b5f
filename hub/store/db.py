"""The one place that creates engines and opens sessions.

Repositories take a ``Session`` and never commit; the service that owns a use case opens
``database.session()`` and the block commits on success, rolls back on error.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from filelock import FileLock, Timeout
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from hub.errors import ConfigError, StorageError

SECRET_PARAMETERS = ("password", "sslpassword")
"""Connection parameters that hold a secret when given in the URL's query (libpq's
``password`` and ``sslpassword``), hidden like the password part."""


def safe_url(url: str) -> str:
    """The URL with its password hidden (in the password part or a query parameter), fit
    for messages, logs and `evi config show`."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return "<unparseable database URL>"
    hidden = {k: "***" for k in parsed.query if k.lower() in SECRET_PARAMETERS}
    shown = parsed.update_query_dict(hidden).render_as_string(hide_password=True)
    return shown.replace("=%2A%2A%2A", "=***")  # as the password part shows it


NO_CONNECTION_LEFT: Final = (
    "the database server has no connection left for this process (its max_connections, or "
    "the CONNECTION LIMIT of the role or the database, is reached: docs/operations.md says "
    "how many each `evi` process uses); run fewer workers or sync helpers, or let the "
    "server take more connections, and run the command again; nothing of this one was kept"
)

_OPERATIONAL: Final = (
    (
        "database is locked",
        "the database is locked: another program has held a write transaction on it "
        "for 30 s; look for a stuck process (or a database tool left open) and run the "
        "command again; nothing of this one was kept",
    ),
    (
        "database or disk is full",
        "the disk holding the database is full; free space and run the command again; "
        "nothing of this one was kept",
    ),
    (
        "disk i/o error",
        "the database file could not be read or written (disk I/O error): check that the "
        "disk holding it has free space and no faults, and run the command again; nothing "
        "of this one was kept",
    ),
    (
        "readonly database",
        "the database file is read-only for this user; check the owner and mode of "
        "EVI_HOME and its evi.db",
    ),
    (
        "unable to open database file",
        "the database file cannot be opened; check that EVI_HOME exists and this user may "
        "write in it",
    ),
    (
        "server closed the connection",
        "the database server closed the connection; check that it is running and run the "
        "command again; nothing of this one was kept",
    ),
    (
        "password authentication failed",
        "the database server refused the password of the database user in the URL; check "
        "the user and password (or ~/.pgpass)",
    ),
    (
        "is not permitted to log in",
        "the database server does not let the database user in the URL log in (its role "
        "has NOLOGIN); the database's administrator grants LOGIN",
    ),
    *(
        (marker, NO_CONNECTION_LEFT)
        for marker in ("too many clients", "too many connections", "remaining connection slots")
    ),
    (
        "lock timeout",
        "another database session has held a lock this command needs for longer than "
        "lock_timeout (a transaction left open in psql or a database tool, or a long "
        "statement: see pg_stat_activity and pg_locks on the database server); end it and "
        "run the command again; nothing of this one was kept",
    ),
    (  # after "lock timeout": PostgreSQL says "canceling statement due to lock timeout"
        "canceling statement due to",
        "the database server cancelled a statement of this command (a database "
        "administrator's pg_cancel_backend, a statement_timeout set for the role or the "
        "database, or a conflict with recovery on a standby); run the command again; "
        "nothing of this one was kept",
    ),
    (
        "connection",
        "lost the connection to the database server; check that it is running and run the "
        "command again; nothing of this one was kept",
    ),
)


_ENDED: Final = (
    "server closed the connection",
    "terminating connection",
    "the connection is lost",
    "consuming input failed",
)
"""What the driver says of a connection the server had taken and then ended (a restart, a
fail-over, ``pg_terminate_backend``): the server was reached, so the URL is not the thing
to check (:meth:`Database.check_connection`)."""


def operational_problem(exc: OperationalError) -> str | None:
    """What an operator should know about a database failure that is not the hub's own
    (a lock held elsewhere, a full disk, a file it may not write, a server gone), in words
    with no part of the statement or its parameters; ``None`` for anything else."""
    text = str(exc.orig).lower() if exc.orig is not None else ""
    return next((problem for marker, problem in _OPERATIONAL if marker in text), None)


def database_away(exc: BaseException) -> str | None:
    """:func:`operational_problem` for SQLAlchemy's ``OperationalError`` and for a driver's
    own (psycopg's, sqlite3's), which a read through the driver's cursor (the transfer
    log's, :class:`hub.ledger.tree.StoredTree`) raises unwrapped: a server that closed the
    connection under one of those is as much a database gone away as under a statement
    SQLAlchemy ran. ``None`` for anything else. For the last nets of the commands and the
    web pages, and :meth:`Database.session`, which says it for every unit of work."""
    if isinstance(exc, OperationalError):
        return operational_problem(exc)
    for name in ("psycopg", "sqlite3"):  # only a driver already imported can have raised
        driver = sys.modules.get(name)
        if driver is not None and isinstance(exc, driver.OperationalError):
            return operational_problem(OperationalError(None, None, exc))
    return None


PERMISSION_DENIED: Final = (
    "the database user in EVI_DATABASE_URL may not do this (PostgreSQL: permission "
    "denied): `evi db upgrade`, `evi db harden` and `evi log purge` connect as the "
    "database's owner, every other command as the application role (docs/operations.md, "
    "PostgreSQL)"
)


def privilege_problem(exc: BaseException) -> str | None:
    """:data:`PERMISSION_DENIED` for PostgreSQL's ``insufficient_privilege`` (SQLSTATE
    42501): the command ran as a role the database does not let do it, which the operator
    fixes, not a fault of the hub; ``None`` for anything else."""
    return (
        PERMISSION_DENIED
        if getattr(getattr(exc, "orig", None), "sqlstate", None) == "42501"
        else None
    )


LOCK_TIMEOUT_SECONDS = 60
"""How long a statement on PostgreSQL waits for a lock another session holds before it
fails (``lock_timeout``), unless the URL, the role or the database sets one: without it a
worker waited, silent and deaf to SIGTERM, for as long as someone's transaction stayed
open (docs/operations.md, PostgreSQL)."""


def _postgres_lock_timeout(dbapi_connection: Any, _record: Any) -> None:
    """Give a new PostgreSQL connection :data:`LOCK_TIMEOUT_SECONDS` as its
    ``lock_timeout``, unless one is set already (PostgreSQL's default, 0, waits forever)."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SHOW lock_timeout")
            row = cursor.fetchone()
            if row is not None and row[0] == "0":
                cursor.execute(f"SET lock_timeout = '{int(LOCK_TIMEOUT_SECONDS)}s'")
    finally:
        dbapi_connection.autocommit = autocommit


def create_db_engine(url: str, *, create: bool = True, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout.

    ``create``: a SQLite file that does not exist is created (private, mode 0600). Without
    it the file is opened read-write only (SQLite's ``mode=rw``), so a command run on an
    empty home leaves no empty database behind; `evi db upgrade` creates it
    (:meth:`Database.create_file`)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: e.g. a port that is not a number
        raise ConfigError(
            "EVI_DATABASE_URL is not a database URL; use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST:PORT/DB"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        on_disk = bool(parsed.database) and parsed.database != ":memory:"
        if on_disk and create:
            create_private_file(Path(str(parsed.database)))
        engine = create_engine(parsed, **kwargs)
        if on_disk and not create:
            event.listen(engine, "do_connect", _existing_file_only)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() in ("postgresql", "postgres"):
        if parsed.drivername != "postgresql+psycopg":  # postgresql:// means psycopg2 to SQLAlchemy
            raise ConfigError(
                "EVI_DATABASE_URL: write the URL as postgresql+psycopg://USER@HOST:PORT/DB "
                f"(the driver EVI hub installs, psycopg 3), not {parsed.drivername}://"
            )
        try:
            engine = create_engine(parsed, pool_pre_ping=True, **kwargs)
        except ModuleNotFoundError:
            raise ConfigError(
                "PostgreSQL support is not installed: pip install 'evi-hub[postgres]'"
            ) from None
        event.listen(engine, "connect", _postgres_lock_timeout)
        return engine
    raise ConfigError(
        f"unsupported database '{parsed.get_backend_name()}' in EVI_DATABASE_URL; "
        "EVI hub runs on SQLite or PostgreSQL"
    )


def _existing_file_only(
    _dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]
) -> None:
    """Open the SQLite file read-write without creating it (``mode=rw``), as a URI; the
    engine's URL stays the path, which the writer's lock file and helpers go by."""
    if cargs and not cparams.get("uri"):
        path = Path(cargs[0]).absolute().as_posix()
        cargs[0] = f"file:{quote(path)}?mode=rw"
        cparams["uri"] = True


def create_private_file(path: Path) -> None:
    """Create a new SQLite database file that only its owner can read (mode 0600).

    The database holds record bodies (health and benefit data among them), so it is not
    left to the umask (typically 0644: readable by every local user). SQLite gives its
    ``-wal`` and ``-shm`` files the main file's permissions, so they are private too. A
    directory created for it is 0700. An existing file is left as it is (its owner may
    have reasons); see :func:`loose_permissions`.
    """
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with suppress(FileExistsError):  # an existing database, or another process was first
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def loose_permissions(url: str) -> str | None:
    """A warning if ``url`` is a SQLite file that users other than its owner can read or
    write; ``None`` otherwise (and for PostgreSQL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    try:
        mode = os.stat(parsed.database).st_mode
    except FileNotFoundError:
        return None
    if not mode & (stat.S_IRWXG | stat.S_IRWXO):
        return None
    return (
        f"the database file {parsed.database} can be read or written by other users (mode "
        f"{stat.S_IMODE(mode):04o}); it holds personal data: chmod 600 it (and its -wal and "
        "-shm files)"
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not pysqlite, decide when transactions begin, so that
    # BEGIN IMMEDIATE (see Database.session(write_lock=True)) is honoured.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # 8 KB pages (SQLite's default is 4 KB): fewer pages per row and index entry, measured
    # with bench/ledger.py about 5-10 % more batched appends, single-entry commits
    # unchanged (16 KB pages gained no more and made single commits 30 % slower). Takes
    # effect only when the database file is created; existing files keep their page size.
    cursor.execute("PRAGMA page_size=8192")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # The nightly job writes in large batches: checkpointing the WAL every 10,000 pages
    # (about 80 MB) instead of SQLite's 1,000 writes each index page back once instead of
    # many times, and a 64 MB page cache keeps the ledger's random-keyed indexes in memory.
    # Measured with bench/ledger.py: batched appends about 1.9x faster. Durability is
    # unchanged (WAL, synchronous=NORMAL).
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


_TURN_TIMEOUT_SECONDS = 30.0
_TURN_POLL_SECONDS = 0.002


def _writer_turns(engine: Engine) -> FileLock | None:
    """Turns at the write lock of a SQLite database file, handed on within milliseconds.

    SQLite lets one connection write at a time, and a connection that finds the lock taken
    sleeps between tries (1, 2, 5, 10, … up to 100 ms). When several processes keep
    writing short transactions (a sync spread over processes, see ``hub.sync.fanout``), a
    waiter is usually asleep when the lock comes free and another writer takes it first:
    measured with four processes syncing one connector each, they did no better than one
    process doing all four. So every ``write_lock`` transaction first takes an exclusive
    file lock beside the database (``evi.db-writer``), looked at every 2 ms (measured on a
    full sync: every 0.5 ms cost more in wake-ups than it won, every 5 ms lost time). The
    operating system gives it up when its holder ends, however it ends, and threads of one
    process exclude each other on it too. ``None`` for PostgreSQL (row locks) and
    in-memory SQLite.
    """
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return FileLock(
        url.database + "-writer",
        timeout=_TURN_TIMEOUT_SECONDS,
        mode=0o600,
        preserve_lock_file=True,
    )


def _sqlite_begin(conn: Any) -> None:
    immediate = conn.get_execution_options().get("evi_write_lock", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """An engine plus the session factory. Create one per process."""

    def __init__(self, url: str, *, create: bool = True, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_db_engine(url, create=create, **engine_kwargs)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._turns = _writer_turns(self.engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self, *, write_lock: bool = False, dry_run: bool = False) -> Iterator[Session]:
        """A unit of work: commits when the block ends, rolls back if it raises.

        ``dry_run=True`` always rolls back: the block sees its own changes, nothing stays.

        ``write_lock=True`` takes SQLite's write lock at the start (``BEGIN IMMEDIATE``)
        so read-then-write sequences (sequence numbers, cursors) cannot interleave.
        On PostgreSQL it has no effect; use row or advisory locks there.
        """
        with self._turn() if write_lock else nullcontext():
            session = self._sessions()
            try:
                if write_lock:  # BEGIN IMMEDIATE: a lock held elsewhere fails here, 30 s on
                    session.connection(execution_options={"evi_write_lock": True})
                yield session
                if dry_run:
                    session.rollback()
                else:
                    session.commit()
            except BaseException as exc:
                # the connection may be gone with the error: the error is what to tell
                with suppress(Exception):
                    session.rollback()
                problem = database_away(exc)
                if problem is None:
                    raise
                raise StorageError(problem) from None
            finally:
                session.close()

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """A turn at SQLite's write lock (see :func:`_writer_turns`); nothing elsewhere."""
        if self._turns is None:
            yield
            return
        try:
            self._turns.acquire(poll_interval=_TURN_POLL_SECONDS)
        except Timeout:
            raise StorageError(
                f"the database stayed busy for {_TURN_TIMEOUT_SECONDS:.0f} s: another process "
                "kept writing to it; check for a stuck `evi` process and try again"
            ) from None
        try:
            yield
        finally:
            self._turns.release()

    def after_fork(self, *, page_cache_kib: int | None = None) -> None:
        """In a forked child: leave the parent's connections and lock file to the parent.

        ``page_cache_kib`` caps SQLite's page cache of the child's connections (each is
        64 MB otherwise, which several processes need not hold each).
        """
        self.engine.dispose(close=False)
        self._turns = _writer_turns(self.engine)
        if page_cache_kib is not None and self.dialect == "sqlite":

            def smaller_cache(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.execute(f"PRAGMA cache_size=-{int(page_cache_kib)}")

            event.listen(self.engine, "connect", smaller_cache)

    def sqlite_file(self) -> Path | None:
        """The SQLite database file (``None`` for PostgreSQL and in-memory databases)."""
        parsed = make_url(self.url)
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return None
        return Path(parsed.database)

    def create_file(self) -> None:
        """Create the SQLite file if there is none yet, private (`evi db upgrade`)."""
        path = self.sqlite_file()
        if path is not None:
            create_private_file(path)

    def check_connection(self) -> None:
        """Raise :class:`StorageError` naming the (password-less) URL if unreachable, or
        saying that a SQLite file is not there yet."""
        path = self.sqlite_file()
        if path is not None and not path.exists():
            raise StorageError(
                f"there is no database at {path} yet: run `evi db upgrade` first (or check "
                "EVI_HOME and EVI_DATABASE_URL if it should be there)"
            )
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            problem = operational_problem(exc)
            if path is not None and problem is not None:  # a file: a full disk, a lock, its mode
                raise StorageError(f"cannot open the database {path}: {problem}") from None
            if problem == NO_CONNECTION_LEFT:  # the server is there, with no slot to spare
                raise StorageError(
                    f"cannot connect to the database at {safe_url(self.url)}: {problem}"
                ) from None
            said = str(exc.orig).lower() if exc.orig is not None else ""
            if problem is not None and any(marker in said for marker in _ENDED):
                raise StorageError(problem) from None  # reached: its URL is not what to check
            first = str(exc.orig).strip().splitlines()[0] if exc.orig else "connection failed"
            raise StorageError(
                f"cannot reach the database at {safe_url(self.url)}: {first}. "
                "Check EVI_DATABASE_URL and that the server is running."
            ) from None

    def dispose(self) -> None:
        self.engine.dispose()
