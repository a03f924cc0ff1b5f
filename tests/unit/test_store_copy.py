"""`evi db copy --to URL`: a pilot on SQLite moved to PostgreSQL, every row, or nothing.

The pilot is built by the hub's own code: the demo's small caseload, a night queued, fk
refusing every push (dead letters), the others' transfers still queued, a web user signed
in, a signed checkpoint with its witness copy. The target is a PostgreSQL schema of its
own (tests/pg_support.py), dropped afterwards.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_support import pg_schema_url
from sqlalchemy import create_engine, inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sync_support import POPULATION, SEED, knobs

from hub.context import open_hub
from hub.demo.run import demo_sandboxes
from hub.ledger.tree import StoredTree
from hub.settings import get_settings
from hub.store import migrate
from hub.store.base import Base
from hub.store.db import Database
from hub.store.tables.participant import ParticipantRow
from hub.store.tables.sync import OutboxItem, SyncRun
from hub.store.tables.users import WebSessionRow

Cli = Callable[..., Any]


@pytest.fixture
def target() -> Iterator[str]:
    """An empty PostgreSQL schema (skipped without EVI_TEST_POSTGRES_URL)."""
    with pg_schema_url() as url:
        yield url


@pytest.fixture
def pilot(cli: Cli, evi_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A pilot's SQLite database after a night (see the module docstring); its URL."""
    url = f"sqlite:///{tmp_path / 'pilot.db'}"
    monkeypatch.setenv("EVI_DATABASE_URL", url)
    monkeypatch.setenv("EVI_SYNC__MAX_ATTEMPTS", "1")
    monkeypatch.setenv("EVI_LEDGER__WITNESS_DIR", "witness")
    setup = cli("demo", "--setup-only", "--seed", str(SEED), "--population", str(POPULATION))
    assert setup.code == 0, setup.err
    assert cli("sync", "--sandbox", "--queue-only").code == 0
    hub = open_hub(get_settings())
    try:
        knobs(demo_sandboxes(hub)["fk"], fail_rate=1.0)
        assert cli("sync", "--sandbox", "--connector", "fk").code == 1  # dead letters
        knobs(demo_sandboxes(hub)["fk"], fail_rate=0.0)
        added = cli("users", "add", "anna.af", "--party", "af", "--role", "caseworker")
        assert added.code == 0, added.err
        from hub.web.page_sessions import open_session

        assert open_session(hub, added.out.strip().splitlines()[0]) is not None
    finally:
        hub.close()
    assert cli("log", "checkpoint", "--new").code == 0
    with Database(url, create=False).engine.connect() as conn:  # what the pilot holds
        statuses = set(conn.scalars(select(OutboxItem.status)))
        assert {"dead", "pending"} <= statuses
        assert conn.scalar(select(WebSessionRow.id)) is not None
    assert list((evi_home / "witness").glob("*.checkpoint"))
    return url


def use(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("EVI_DATABASE_URL", url)
    get_settings.cache_clear()


def rows(url: str) -> dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]:
    """Every row of every table of the hub's schema, by primary key."""
    db = Database(url, create=False)
    try:
        with db.engine.connect() as conn:
            found: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]] = {}
            for table in Base.metadata.sorted_tables:
                key = [c.key for c in table.primary_key.columns]
                found[table.name] = {
                    tuple(row._mapping[k] for k in key): tuple(row)
                    for row in conn.execute(select(table))
                }
            return found
    finally:
        db.dispose()


def tables_in(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def ledger_head(url: str) -> tuple[int, bytes]:
    db = Database(url, create=False)
    try:
        with db.session() as session:
            tree = StoredTree(session)
            return tree.size(), tree.root()
    finally:
        db.dispose()


def a_number(url: str) -> str:
    """A participant's personnummer (the demo's Skatteverket test numbers), opened with
    the keys in $EVI_HOME."""
    hub = open_hub(get_settings())
    try:
        with hub.db.session() as session:
            row = session.scalars(select(ParticipantRow).order_by(ParticipantRow.id)).first()
            assert row is not None
            return hub.keys.decrypt_number(row.pnr_ciphertext)
    finally:
        hub.close()


@pytest.mark.postgres
def test_a_pilot_moves_to_postgresql_whole_and_goes_on_there(
    pilot: str, target: str, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = a_number(pilot)
    before = rows(pilot)
    size, root = ledger_head(pilot)

    copied = cli("db", "copy", "--to", target, "--batch-size", "7")  # many batches per table

    assert copied.code == 0, copied.err
    assert "row counts equal" in copied.out
    assert f"root {root.hex()} as in the source" in copied.out
    assert "evi db harden" in copied.out and "EVI_DATABASE_URL" in copied.out
    after = rows(target)
    for table, stored in before.items():
        assert after[table] == stored, table
    assert before["ledger_entry"] and before["consent_version"] and before["web_session"]
    assert ledger_head(target) == (size, root)

    use(monkeypatch, target)  # the hub on the new database, the same $EVI_HOME and keys
    verified = cli("log", "verify", "--json")
    assert verified.code == 0, verified.err
    report = json.loads(verified.out)
    assert report["ok"] and report["size"] == size and report["witness_copies"] >= 1
    shown = cli("consent", "show", "--pnr", number)  # found by its number: the keys work
    assert shown.code == 0, shown.err
    assert cli("transfers", "failed", "--summary").out.count("fk") >= 1  # dead letters kept

    night = cli("demo", "--seed", str(SEED), "--population", str(POPULATION))  # a new night
    assert night.code == 0, night.err
    assert cli("users", "add", "bo.fk", "--party", "fk", "--role", "caseworker").code == 0
    grown = rows(target)
    for table in ("ledger_entry", "ledger_checkpoint", "record", "outbox", "sync_run"):
        assert len(grown[table]) > len(after[table]), table
    assert len(grown["web_user"]) == 2
    assert ledger_head(target)[0] > size
    assert cli("log", "verify").code == 0


@pytest.mark.postgres
def test_a_target_holding_hub_data_or_the_database_itself_is_refused_and_left_as_it_was(
    pilot: str, target: str, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("db", "copy", "--to", target).code == 0
    before = rows(target)

    again = cli("db", "copy", "--to", target)
    use(monkeypatch, target)  # now PostgreSQL is the configured database
    itself = cli("db", "copy", "--to", target)
    other_name = make_url(target).update_query_dict({"application_name": "evi-copy"})
    aliased = cli("db", "copy", "--to", other_name.render_as_string(hide_password=False))

    assert again.code == 2
    assert "already holds EVI hub data" in again.err and "nothing was copied" in again.err
    assert itself.code == 2 and "is the database this hub is configured with" in itself.err
    assert aliased.code == 2 and "(under another name)" in aliased.err
    assert rows(target) == before


@pytest.mark.postgres
def test_a_source_not_at_the_newest_revision_is_refused_and_nothing_is_written(
    evi_home: Path, tmp_path: Path, target: str, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(Database(old), "0006")
    use(monkeypatch, old)

    refused = cli("db", "copy", "--to", target)

    assert refused.code == 2
    assert "0006" in refused.err and "run `evi db upgrade`" in refused.err
    assert tables_in(target) == set()


@pytest.mark.postgres
def test_a_running_sync_makes_the_copy_wait_and_nothing_is_written(
    pilot: str, target: str, cli: Cli
) -> None:
    from sync_support import connector_lock

    with connector_lock(Database(pilot, create=False), "kommun"):
        refused = cli("db", "copy", "--to", target)

    assert refused.code == 3
    assert "a sync of 'kommun' is running" in refused.err and "evi db copy" in refused.err
    assert tables_in(target) == set()


@pytest.mark.postgres
def test_values_postgresql_would_refuse_are_named_never_shown_and_nothing_is_kept(
    pilot: str, target: str, cli: Cli
) -> None:
    too_long = "kommun-" + "x" * 40  # sync_run.status is VARCHAR(12); SQLite took it
    db = Database(pilot, create=False)
    with db.session() as session:
        first = session.scalar(select(SyncRun.id).order_by(SyncRun.id))
        session.execute(update(SyncRun).where(SyncRun.id == first).values(status=too_long))
        person = session.scalar(select(ParticipantRow.id).order_by(ParticipantRow.id))
        session.execute(
            update(ParticipantRow).where(ParticipantRow.id == person).values(birth_year=2**40)
        )
    db.dispose()

    refused = cli("db", "copy", "--to", target)

    assert refused.code == 1
    assert f"sync_run.status (id={first}) is 47 characters long" in refused.err
    assert f"participant.birth_year (id={person}) is beyond the range" in refused.err
    assert too_long not in refused.err and str(2**40) not in refused.err
    assert tables_in(target) == set()  # not even the schema stays


def test_a_target_that_is_no_postgresql_url_is_refused_before_anything_is_opened(
    evi_home: Path, tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, f"sqlite:///{tmp_path / 'pilot.db'}")
    other = tmp_path / "other.db"
    for url, says in (
        (f"sqlite:///{other}", "must be a PostgreSQL database"),
        ("not a url", "is not a database URL"),
        ("postgresql://evi@127.0.0.1/evi", "postgresql+psycopg://"),
        ("postgresql+psycopg://evi@127.0.0.1", "names no database"),
    ):
        result = cli("db", "copy", "--to", url)
        assert result.code == 2, url
        assert says in result.err, url
    assert not other.exists() and not (tmp_path / "pilot.db").exists()


def test_a_password_in_the_url_is_never_shown(
    evi_home: Path, tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, f"sqlite:///{tmp_path / 'pilot.db'}")
    assert cli("db", "upgrade").code == 0
    secret = "s3cret-" + uuid.uuid4().hex
    url = f"postgresql+psycopg://evi:{secret}@127.0.0.1:9/evi"  # nothing listens on port 9

    given = cli("db", "copy", "--to", url)
    monkeypatch.setattr("sys.stdin", io.StringIO(url + "\n"))  # --to -: kept out of `ps`
    read = cli("db", "copy", "--to", "-")

    for result in (given, read):
        assert result.code == 1
        assert "cannot reach the target database at postgresql+psycopg://evi:***@" in result.err
        assert secret not in result.err + result.out


@pytest.mark.postgres
def test_a_target_upgraded_and_hardened_first_takes_the_copy_and_stays_append_only(
    pilot: str, target: str, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    role = "evi_app_" + uuid.uuid4().hex[:8]
    owner = create_engine(target)
    with owner.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} NOLOGIN")
    try:
        use(monkeypatch, target)  # as the operations guide has it: upgrade, harden
        assert cli("db", "upgrade").code == 0
        assert cli("db", "harden", "--role", role).code == 0
        use(monkeypatch, pilot)

        copied = cli("db", "copy", "--to", target)

        assert copied.code == 0, copied.err
        assert rows(target)["ledger_entry"] == rows(pilot)["ledger_entry"]
        with pytest.raises(DBAPIError) as err, owner.begin() as conn:  # the guards hold
            conn.execute(text("UPDATE ledger_entry SET actor = 'x' WHERE seq = 1"))
        assert "only a purge may change an entry" in str(err.value.orig)
        use(monkeypatch, target)
        assert cli("demo", "--seed", str(SEED), "--population", str(POPULATION)).code == 0
        assert cli("log", "verify").code == 0
    finally:
        with owner.begin() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
        owner.dispose()
