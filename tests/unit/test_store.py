"""Storage: migrations match the models on SQLite and PostgreSQL, keys guard the data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

from hub.context import Hub
from hub.errors import ConfigError, StorageError
from hub.model.identity import parse_identity
from hub.settings import get_settings
from hub.store import migrate
from hub.store.db import Database
from hub.store.participants import ParticipantRepository

NUMBER = "189001019802"


@pytest.fixture
def migrated(db_url: str) -> Database:
    db = Database(db_url)
    migrate.upgrade(db)
    yield db
    db.dispose()


def test_migrations_create_exactly_the_models(migrated: Database) -> None:
    assert migrate.current_revision(migrated) == migrate.head_revision()
    assert migrate.drift(migrated) == []


def test_the_revision_the_installation_asks_for_is_alembics_head() -> None:
    assert migrate.head_revision() == migrate.HEAD


@pytest.mark.parametrize(
    ("revision", "says"),
    [
        ("0002", f"needs {migrate.HEAD}: run `evi db upgrade`"),
        ("9999", "newer than this installation"),
    ],
)
def test_a_database_of_another_release_is_refused_and_status_says_so(
    cli, evi_home: Path, monkeypatch: pytest.MonkeyPatch, revision: str, says: str
) -> None:
    url = f"sqlite:///{evi_home / 'other.db'}"
    monkeypatch.setenv("EVI_DATABASE_URL", url)
    db = Database(url)
    migrate.upgrade(db, min(revision, migrate.HEAD))
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})
    db.dispose()
    status = cli("db", "status")
    assert status.code == 1 and f"revision: {revision}" in status.out and says in status.err
    for command in (("sync", "--dry-run"), ("consent", "list"), ("log", "verify")):
        refused = cli(*command)
        assert refused.code != 0 and says in refused.err, command
    if revision > migrate.HEAD:  # the package rolled back: upgrading cannot help either
        upgrade = cli("db", "upgrade")
        assert upgrade.code == 1 and says in upgrade.err and "internal error" not in upgrade.err
        assert cli("db", "status").out == status.out  # and it changed nothing


def test_upgrade_is_repeatable(migrated: Database) -> None:
    before, after = migrate.upgrade(migrated)
    assert before == after == migrate.head_revision()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    with db.session() as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_participant_is_found_again_by_number_and_pseudonym(hub: Hub) -> None:
    identity = parse_identity(NUMBER)
    with hub.db.session() as session:
        repo = ParticipantRepository(session, hub.keys)
        row = repo.ensure(identity)
        pseudonym = row.pseudonym
    with hub.db.session() as session:
        repo = ParticipantRepository(session, hub.keys)
        again = repo.ensure(identity)
        assert again.pseudonym == pseudonym
        assert repo.identity_of(again) == identity
        assert repo.find_by_pseudonym(pseudonym) is again
        assert NUMBER not in pseudonym


def test_database_file_holds_no_personnummer_in_plain_text(
    evi_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "plain.db"
    monkeypatch.setenv("EVI_DATABASE_URL", f"sqlite:///{path}")
    get_settings.cache_clear()
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db)
    hub = Hub(settings=get_settings(), db=db)
    numbers = ["189001019802", "189001029819", "191401682396"]
    with db.session() as session:
        repo = ParticipantRepository(session, hub.keys)
        for number in numbers:
            repo.ensure(parse_identity(number))
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    raw = path.read_bytes()
    for number in numbers:
        for form in (number, number[2:], f"{number[:8]}-{number[8:]}"):
            assert form.encode() not in raw


def test_keys_are_created_with_owner_only_permissions(hub: Hub) -> None:
    hub.keys  # noqa: B018
    keys_dir = hub.settings.keys_dir
    assert sorted(p.name for p in keys_dir.iterdir()) == [
        "connector-secrets.key",
        "pnr-encryption.key",
        "pnr-lookup.key",
        "pseudonym.key",
    ]
    for path in keys_dir.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600


def test_missing_key_is_named_and_nothing_is_overwritten(hub: Hub) -> None:
    with hub.db.session() as session:
        ParticipantRepository(session, hub.keys).ensure(parse_identity(NUMBER))
    missing = hub.settings.keys_dir / "pnr-lookup.key"
    missing.unlink()
    reopened = Hub(settings=hub.settings, db=hub.db)
    with pytest.raises(ConfigError, match="key 'pnr-lookup' is missing"):
        reopened.keys  # noqa: B018
    assert not missing.exists(), "a replacement key must not be generated"


def test_a_different_key_is_refused(hub: Hub) -> None:
    hub.keys  # noqa: B018
    path = hub.settings.keys_dir / "pseudonym.key"
    path.write_text("QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=\n")
    with pytest.raises(ConfigError, match="not the key this database was written with"):
        Hub(settings=hub.settings, db=hub.db).keys  # noqa: B018


def test_keys_may_come_from_the_environment(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVI_KEYS__PSEUDONYM", "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=")
    get_settings.cache_clear()
    ring = Hub(settings=get_settings(), db=hub.db).keys
    assert not (hub.settings.keys_dir / "pseudonym.key").exists()
    assert ring.pseudonym(NUMBER).startswith("p-")


def test_unreachable_database_is_reported_without_password() -> None:
    db = Database("postgresql+psycopg://evi:hemligt@127.0.0.1:1/evi")
    with pytest.raises(StorageError) as err:
        db.check_connection()
    assert "hemligt" not in str(err.value)
    assert "EVI_DATABASE_URL" in str(err.value)


def test_tables_exist_after_upgrade(migrated: Database) -> None:
    assert {"hub_meta", "participant"} <= set(inspect(migrated.engine).get_table_names())


def test_a_database_locked_elsewhere_is_said_in_words_not_an_internal_error(
    tmp_path: Path,
) -> None:
    import sqlite3

    path = tmp_path / "locked.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db)
    holder = sqlite3.connect(path)
    holder.execute("BEGIN IMMEDIATE")  # another program holds a write transaction
    try:
        with pytest.raises(StorageError) as err, db.session() as session:
            session.execute(text("PRAGMA busy_timeout=0"))  # no 30 s wait in a test
            session.execute(text("INSERT INTO hub_meta (key, value) VALUES ('k', '190001019802')"))
    finally:
        holder.rollback()
        holder.close()
    message = str(err.value)
    assert (
        message.startswith("the database is locked") and "nothing of this one was kept" in message
    )
    assert "INSERT" not in message and "190001019802" not in message
    with db.session() as session:  # usable again once the other program lets go
        assert session.execute(text("SELECT count(*) FROM hub_meta WHERE key = 'k'")).scalar() == 0
    db.dispose()


@pytest.mark.parametrize(
    ("driver_says", "we_say"),
    [
        ("database or disk is full", "the disk holding the database is full"),
        ("attempt to write a readonly database", "read-only for this user"),
        ('connection to server at "db" failed: Connection refused', "lost the connection"),
        ("no such column: x", None),  # the hub's own mistake: stays an internal error
    ],
)
def test_operational_failures_an_operator_can_fix_are_named(
    driver_says: str, we_say: str | None
) -> None:
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from hub.store.db import operational_problem

    problem = operational_problem(
        OperationalError("SELECT 1", {}, sqlite3.OperationalError(driver_says))
    )
    assert (problem is None) if we_say is None else (we_say in (problem or ""))


@pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_server_that_closes_the_connection_under_the_logs_reads_is_said_in_words(
    migrated: Database,
) -> None:
    """PostgreSQL restarting (or a DBA ending the session) while the transfer log's size is
    read, as every worker round does first, through the driver's cursor. Before: the
    driver's own error got past the words for a database gone away, and the rollback on the
    dead connection failed over it: `evi worker` exited with "internal error
    (OperationalError)" instead of waiting for the database."""
    from hub.ledger.tree import StoredTree

    with pytest.raises(StorageError) as err, migrated.session() as session:
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with migrated.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        StoredTree(session).size()
    message = str(err.value)  # "lost the connection" or "closed the connection", by timing
    assert "the connection" in message and "database server" in message
    with migrated.session() as session:  # a new connection once it answers again
        assert StoredTree(session).size() == 0


@pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_server_that_closes_the_connection_while_the_schema_is_checked_is_said_in_words(
    migrated: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every worker round's checkpoint checks the schema first. Before: a server that
    closed the connection while its revision was read was an "internal error
    (OperationalError)" and the worker exited (the second failure of the kind the
    cut-connections scenario met)."""
    from hub.context import Hub

    real = migrate.stored_revision

    def terminated_first(connection: Any) -> str | None:
        pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with migrated.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        return real(connection)

    monkeypatch.setattr(migrate, "stored_revision", terminated_first)
    hub = Hub(settings=get_settings(), db=migrated)
    with pytest.raises(StorageError) as err:
        hub.require_schema()
    assert "the connection" in str(err.value) and "database server" in str(err.value)
    monkeypatch.setattr(migrate, "stored_revision", real)
    hub.require_schema()  # answered again: nothing to say


@pytest.mark.parametrize("wrapped", [True, False], ids=["sqlalchemys", "the-drivers-own"])
def test_a_command_the_database_fails_outside_a_unit_of_work_says_what_happened(
    evi_home: Path, cli: Any, monkeypatch: pytest.MonkeyPatch, wrapped: bool
) -> None:
    """The last net of every command: a driver's error an operator can act on is said in
    words even where no unit of work turned it into one (an internal error before)."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from hub.context import Hub

    def gone(_self: Hub) -> None:
        closed = sqlite3.OperationalError("server closed the connection unexpectedly")
        if wrapped:
            raise OperationalError("SELECT version_num FROM alembic_version", {}, closed)
        raise closed

    assert cli("db", "upgrade").code == 0
    monkeypatch.setattr(Hub, "require_schema", gone)
    result = cli("consent", "list")
    assert result.code == 1
    assert result.err.startswith("error: the database server closed the connection")
    assert "internal error" not in result.err and "alembic_version" not in result.err
