"""An installation that ran an earlier release for weeks, upgraded with `evi db upgrade`.

The old database is made from a night of the current code's own writers (consents,
records, queued, delivered, dead and attempted transfers, log entries, web users and a
page session) taken down to the old revision with the migrations' own ``downgrade``,
which leaves exactly the tables and columns that revision had (checked against a fresh
``migrate.upgrade(db, revision)``). Then the current code upgrades it and must keep every
row, deliver and retry the old transfers and verify the old log entries.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import inspect, select, text, update
from sync_support import received, sync_options

from hub.connector.errors import TransientConnectorError
from hub.connector.service import build_connector
from hub.consent.service import ConsentService
from hub.context import Hub
from hub.demo.sandboxes import SandboxTarget, transports
from hub.ledger.service import verify
from hub.model.vocab import Category
from hub.store import migrate
from hub.store.db import Database
from hub.store.participants import ParticipantRepository
from hub.store.tables.participant import ParticipantRow
from hub.store.tables.sync import OutboxItem
from hub.sync import history
from hub.sync.delivery import Deliverer
from hub.sync.job import run_sync
from hub.sync.outbox import DEAD, DELIVERED, PENDING
from hub.web.page_sessions import open_session, session_user
from hub.web.users import Role, add_user, authenticate, disable_user


def _downgrade(db: Database, revision: str) -> None:
    from alembic import command

    with db.engine.begin() as conn:
        if revision < "0004":  # on SQLite 0004 goes down by copying web_user, sessions on it
            conn.execute(text("DELETE FROM web_session"))
        command.downgrade(migrate.alembic_config(conn), revision)
    db.engine.dispose()


def _schema(db: Database) -> dict[str, set[str]]:
    found = inspect(db.engine)
    return {
        t: {c["name"] for c in found.get_columns(t)}
        for t in found.get_table_names()
        if t != "alembic_version"
    }


def _counts(db: Database) -> dict[str, int]:
    with db.engine.connect() as conn:
        return {
            t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in _schema(db)
        }


def _lose_answer(demo: Hub, targets: dict[str, SandboxTarget], recipient: str) -> None:
    """One delivery round to ``recipient`` whose push the authority stores but whose
    answer never comes back (a timeout): the transfer stays pending, attempted once."""
    with build_connector(demo, recipient, transport=transports(targets)[recipient]) as built:
        original = built.push_many

        def push_many(transfers: Any) -> Any:
            original(transfers)
            raise TransientConnectorError(recipient, "the answer was lost")

        built.push_many = push_many  # type: ignore[method-assign]
        Deliverer(demo, {recipient: built}, actor="test", max_attempts=5, batch=1).run()


@pytest.fixture
def old_release(
    demo: Hub, targets: dict[str, SandboxTarget], request: pytest.FixtureRequest
) -> dict[str, Any]:
    """A night as a release at ``request.param`` left it (see the module docstring)."""
    revision: str = request.param
    run_sync(demo, sync_options(targets, deliver=False))
    later = datetime.now(UTC) + timedelta(days=1)
    with demo.db.session() as session:
        people = {p.id: p for p in session.scalars(select(ParticipantRow))}
        rows = [
            i
            for i in session.scalars(
                select(OutboxItem).where(OutboxItem.status == PENDING).order_by(OutboxItem.id)
            )
            if i.recipient in ("af", "fk") and not people[i.participant_id].protected_identity
        ]
        assert len(rows) >= 10
        lost = rows[0]  # the one transfer whose answer is lost below
        person = people[lost.participant_id]
        identity = ParticipantRepository(session, demo.keys).identity_of(person)
        lost_id, lost_key, recipient = lost.id, lost.idempotency_key, lost.recipient
        for other in rows[1:]:
            other.next_attempt_at = later  # the lost one alone is due
        session.commit()
    _lose_answer(demo, targets, recipient)
    with demo.db.session() as session:
        # what a release that ran for weeks leaves: dead letters, transfers attempted and
        # waiting for their next attempt, and delivered ones next to them
        dead = [r.id for r in rows[1:4]]
        waiting = [r.id for r in rows[4:7]]
        delivered = [r.id for r in rows[7:9]]
        now = datetime.now(UTC)
        session.execute(
            update(OutboxItem)
            .where(OutboxItem.id.in_(dead))
            .values(status=DEAD, attempts=5, finished_at=now, last_error="gave up after 5")
        )
        session.execute(
            update(OutboxItem)
            .where(OutboxItem.id.in_(waiting))
            .values(attempts=1, next_attempt_at=now - timedelta(hours=1), last_error="503")
        )
        session.execute(
            update(OutboxItem)
            .where(OutboxItem.id.in_(delivered))
            .values(status=DELIVERED, attempts=1, finished_at=now)
        )
        session.execute(
            update(OutboxItem).where(OutboxItem.id.in_([lost_id])).values(next_attempt_at=now)
        )
        session.execute(
            update(OutboxItem)
            .where(OutboxItem.status == PENDING, OutboxItem.next_attempt_at == later)
            .values(next_attempt_at=now - timedelta(minutes=1))
        )
    anna = add_user(demo, "anna.team", "team", Role.CASEWORKER, actor="test").token
    olle = add_user(demo, "olle.gone", "af", Role.CASEWORKER, actor="test").token
    disable_user(demo, "olle.gone", actor="test")
    opened = open_session(demo, anna)
    assert opened is not None
    assert verify(demo).ok

    fresh = Database(f"sqlite:///{request.getfixturevalue('tmp_path') / 'fresh.db'}")
    migrate.upgrade(fresh, revision)
    _downgrade(demo.db, revision)
    assert migrate.current_revision(demo.db) == revision
    assert _schema(demo.db) == _schema(fresh)  # just what that revision had
    fresh.engine.dispose()
    return {
        "revision": revision,
        "counts": _counts(demo.db),
        "dead": dead,
        "waiting": waiting,
        "lost": (lost_id, lost_key, recipient, identity, person.pseudonym),
        "tokens": (anna, olle),
        "session": opened.secret,
    }


@pytest.mark.parametrize("old_release", ["0002", "0004", "0006"], indirect=True)
def test_a_database_an_old_release_ran_upgrades_keeping_every_row_and_delivers(
    demo: Hub, targets: dict[str, SandboxTarget], old_release: dict[str, Any], cli: Any
) -> None:
    revision = old_release["revision"]
    status = cli("db", "status")
    assert status.code == 1 and f"revision: {revision}" in status.out
    assert "run `evi db upgrade`" in cli("log", "verify").err  # refused until the upgrade

    before, after = migrate.upgrade(demo.db)
    assert (before, after) == (revision, migrate.HEAD)
    assert migrate.drift(demo.db) == []
    counts = _counts(demo.db)
    for table, n in old_release["counts"].items():
        assert counts[table] == n, table  # every row kept
    assert cli("db", "status").code == 0
    assert migrate.upgrade(demo.db) == (migrate.HEAD, migrate.HEAD)  # repeatable

    # old log entries verify, with the new ones after them
    assert verify(demo).ok
    # users and tokens as they were; a page session survives where the release had them
    anna, olle = old_release["tokens"]
    assert authenticate(demo, anna) is not None and authenticate(demo, olle) is None
    survived = session_user(demo, old_release["session"])
    assert (survived is not None) == (revision >= "0004")
    with demo.db.engine.connect() as conn:
        assert (
            conn.execute(text("SELECT COUNT(*) FROM outbox WHERE number_sent IS NULL")).scalar()
            == counts["outbox"]
        )

    # the transfers queued and attempted before the upgrade go; the dead ones once retried
    report = run_sync(demo, sync_options(targets))
    assert report.exit_code == 0, report
    with demo.db.session() as session:
        waiting = session.scalars(
            select(OutboxItem).where(OutboxItem.id.in_(old_release["waiting"]))
        ).all()
        assert {(w.status, w.attempts) for w in waiting} == {(DELIVERED, 2)}
        assert session.scalar(select(OutboxItem.id).where(OutboxItem.status == PENDING)) is None
    assert history.retry(demo, None) == len(old_release["dead"])
    assert run_sync(demo, sync_options(targets)).exit_code == 0
    with demo.db.session() as session:
        statuses = {
            session.get(OutboxItem, i).status  # type: ignore[union-attr]
            for i in old_release["dead"]
        }
        assert statuses == {DELIVERED}
    assert verify(demo).ok
    assert cli("log", "verify").code == 0
    assert cli("users", "list").code == 0


@pytest.mark.parametrize("old_release", ["0006"], indirect=True)
def test_a_transfer_attempted_before_the_upgrade_whose_number_may_no_longer_go_gets_a_new_key(
    demo: Hub, targets: dict[str, SandboxTarget], old_release: dict[str, Any]
) -> None:
    # Before revision 0007 nobody kept whether an attempt went with the person's number.
    # The old release's attempt reached the authority with it, its answer was lost; after
    # the upgrade the person blocks `identity` for that authority. The retry goes without
    # the number: another body, so not under the key the authority already holds (it
    # answers 422 and the transfer would be dead for good).
    lost_id, key, recipient, identity, pseudonym = old_release["lost"]
    migrate.upgrade(demo.db)
    ConsentService(demo).block(identity, actor="test", party=recipient, category=Category.IDENTITY)
    with demo.db.session() as session:
        session.execute(
            update(OutboxItem)
            .where(OutboxItem.id != lost_id)
            .values(next_attempt_at=datetime.now(UTC) + timedelta(days=1))
        )
    with build_connector(demo, recipient, transport=transports(targets)[recipient]) as built:
        Deliverer(demo, {recipient: built}, actor="test", max_attempts=5, batch=1).run()
    with demo.db.session() as session:
        row = session.get(OutboxItem, lost_id)
        assert row is not None
        assert (row.status, row.last_error) == (DELIVERED, None)
        new_key = row.idempotency_key
    assert new_key != key
    held = {i["idempotency_key"]: str(i["body"]) for i in received(targets[recipient])["items"]}
    written = (identity.number, identity.formatted())
    assert any(w in held[key] for w in written)  # the old release's attempt, with the number
    assert pseudonym in held[new_key] and not any(w in held[new_key] for w in written)
    assert verify(demo).ok
