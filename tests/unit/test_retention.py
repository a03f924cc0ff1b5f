"""Retention (gallring): the stored records of people whose consent has ended are removed
on request, each removal logged by pseudonym; everyone else's records stay."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from casework_support import store_records
from record_support import add_record
from sqlalchemy import event, func, select, update
from sync_support import connector_lock
from test_consent_support import Clock, ledger, paper_submission, skatteverket_numbers

from hub.consent.gate import ConsentFacts, Snapshot, WithdrawalFacts
from hub.consent.retention import purge_records
from hub.consent.service import ConsentService
from hub.context import Hub
from hub.errors import InputError, LockHeldError
from hub.ledger.event import Action, ActorRole, LedgerEvent
from hub.ledger.service import purge as purge_log
from hub.ledger.writer import append
from hub.model.identity import parse_identity
from hub.store.participants import ParticipantRepository
from hub.store.tables.consent import (
    ConsentBlockRow,
    ConsentPartyRow,
    ConsentRow,
    ConsentVersionRow,
    ConsentWithdrawalRow,
)
from hub.store.tables.participant import ParticipantRow
from hub.store.tables.sync import OutboxItem, StoredRecord, Subscription

EXPIRED, NO_CONSENT, RUNNING, WITHDRAWN, PARTLY = skatteverket_numbers(5)
WITHDRAWN_AT = datetime(2025, 3, 1, tzinfo=UTC)
JUNE_2026 = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def caseload(hub: Hub) -> Hub:
    """EXPIRED's consent ran out 2026-01-01, WITHDRAWN's was withdrawn whole on
    2025-03-01, PARTLY's only for af, RUNNING's runs to 2030; NO_CONSENT has none. Each
    has five stored records; EXPIRED's first also an outbox row."""
    clock = Clock()
    service = ConsentService(hub, clock=clock)
    parties = ["kommun", "af", "fk", "team"]
    service.register(paper_submission(EXPIRED, parties=parties), actor="test")
    for pnr in (RUNNING, WITHDRAWN, PARTLY):
        submission = paper_submission(pnr, parties=parties, valid_until="2030-01-01T00:00:00Z")
        service.register(submission, actor="test")
    clock.now = WITHDRAWN_AT
    service.withdraw(parse_identity(WITHDRAWN), actor="test")
    service.withdraw(parse_identity(PARTLY), actor="test", party="af")
    for pnr in (EXPIRED, NO_CONSENT, RUNNING, WITHDRAWN, PARTLY):
        store_records(hub, pnr)
    with hub.db.session() as session:
        record = session.scalars(
            select(StoredRecord).where(StoredRecord.source_id.like(f"{EXPIRED[-4:]}-%"))
        ).first()
        assert record is not None
        session.add(
            OutboxItem(
                idempotency_key="k-1",
                record_id=record.id,
                participant_id=record.participant_id,
                origin=record.source,
                recipient="af",
                purpose="coordination",
                category=record.category,
                status="delivered",
                attempts=1,
                next_attempt_at=WITHDRAWN_AT,
                created_at=WITHDRAWN_AT,
            )
        )
    return hub


def _records_of(hub: Hub) -> dict[str, int]:
    """How many stored records each person has, by number."""
    with hub.db.session() as session:
        people = ParticipantRepository(session, hub.keys)
        counts = {}
        for pnr in (EXPIRED, NO_CONSENT, RUNNING, WITHDRAWN, PARTLY):
            person = people.find(parse_identity(pnr))
            assert person is not None
            counts[pnr] = session.scalar(
                select(func.count()).where(StoredRecord.participant_id == person.id)
            )
        return counts


def _pseudonym(hub: Hub, pnr: str) -> str:
    return hub.keys.pseudonym(parse_identity(pnr).number)


def test_unconfirmed_it_only_says_how_many_would_go(caseload: Hub) -> None:
    before = ledger(caseload.db)
    with pytest.raises(InputError) as refused:
        purge_records(caseload, JUNE_2026, "cli:admin", confirmed=False)

    assert "15 stored records (1 outbox rows) of 3 people" in refused.value.message
    assert "--yes" in refused.value.message
    assert set(_records_of(caseload).values()) == {5}
    assert ledger(caseload.db) == before


def test_the_records_of_people_whose_consent_ended_go_and_each_removal_is_logged(
    caseload: Hub,
) -> None:
    done = purge_records(caseload, JUNE_2026, "cli:admin", confirmed=True)

    assert (done.people, done.records, done.outbox_rows) == (3, 15, 1)
    assert _records_of(caseload) == {
        EXPIRED: 0,  # expired 2026-01-01
        NO_CONSENT: 0,  # never had a consent
        WITHDRAWN: 0,  # withdrawn as a whole
        RUNNING: 5,
        PARTLY: 5,  # withdrawn for af only: the rest still runs
    }
    with caseload.db.session() as session:
        assert session.scalar(select(func.count()).select_from(OutboxItem)) == 0
        # the people and their consents stay: evidence of what was lawful, and the extract
        assert session.scalar(select(func.count()).select_from(ParticipantRow)) == 5
        assert session.scalar(select(func.count()).select_from(ConsentRow)) == 4
    purged = [e for e in ledger(caseload.db) if e["action"] == "records_purged"]
    assert sorted(e["participant"] for e in purged) == sorted(
        _pseudonym(caseload, pnr) for pnr in (EXPIRED, NO_CONSENT, WITHDRAWN)
    )
    assert {e["actor"] for e in purged} == {"cli:admin"}
    assert {e["correlation_id"] for e in purged} == {done.correlation_id}
    assert {e["reason"] for e in purged} == {
        "retention: 5 stored records removed, consent ended before 2026-06-01"
    }
    text = json.dumps(purged)
    assert not any(pnr in text or pnr[2:] in text for pnr in (EXPIRED, NO_CONSENT, WITHDRAWN))


def test_a_consent_that_ended_after_the_date_keeps_its_records(caseload: Hub) -> None:
    done = purge_records(caseload, datetime(2025, 12, 1, tzinfo=UTC), "cli:admin", confirmed=True)

    assert (done.people, done.records) == (2, 10)
    assert _records_of(caseload)[EXPIRED] == 5  # ran to 2026-01-01
    assert _records_of(caseload)[WITHDRAWN] == 0


def test_purging_again_removes_nothing_more(caseload: Hub) -> None:
    purge_records(caseload, JUNE_2026, "cli:admin", confirmed=True)
    again = purge_records(caseload, JUNE_2026, "cli:admin", confirmed=True)
    assert (again.people, again.records, again.outbox_rows) == (0, 0, 0)


def test_a_date_in_the_future_is_refused(caseload: Hub) -> None:
    with pytest.raises(InputError, match="in the future"):
        purge_records(caseload, datetime.now(UTC) + timedelta(days=1), "a", confirmed=True)
    assert set(_records_of(caseload).values()) == {5}


def test_cli_counts_without_yes_and_removes_with_it(caseload: Hub, cli: Any) -> None:
    counted = cli("participants", "purge", "--consent-ended-before", "2026-06-01")
    assert counted.code == 2 and "this would remove 15 stored records" in counted.err

    done = cli("participants", "purge", "--consent-ended-before", "2026-06-01", "--yes")
    assert done.code == 0, done.err
    assert "removed 15 stored records (1 outbox rows) of 3 people" in done.err
    assert _records_of(caseload)[RUNNING] == 5

    at_noon = cli("participants", "purge", "--consent-ended-before", "2026-06-01T12:00:00Z")
    assert at_noon.code == 2  # the instant as given, not with +00:00
    assert "whose consent ended before 2026-06-01T12:00:00Z," in at_noon.err

    bad = cli("participants", "purge", "--consent-ended-before", "1 juni")
    assert bad.code == 2 and "--consent-ended-before" in bad.err


# -- the final step: removing a person entirely -----------------------------------------


@pytest.fixture
def forgotten(caseload: Hub, monkeypatch: pytest.MonkeyPatch) -> Hub:
    """The caseload after retention of records (EXPIRED, NO_CONSENT and WITHDRAWN lose
    theirs) and of the whole transfer log; RUNNING's records are gone too (as if never
    stored), but its consent still runs. EXPIRED also had a block and a subscription.
    The log is purged up to now: this test database keeps no minimum retention."""
    monkeypatch.setattr(caseload.settings.ledger, "minimum_retention_days", 0)
    purge_records(caseload, JUNE_2026, "cli:admin", confirmed=True)
    with caseload.db.session() as session:
        people = ParticipantRepository(session, caseload.keys)
        expired = people.find(parse_identity(EXPIRED))
        running = people.find(parse_identity(RUNNING))
        assert expired is not None and running is not None
        session.execute(
            StoredRecord.__table__.delete().where(StoredRecord.participant_id == running.id)
        )
        session.add(
            ConsentBlockRow(
                id="b-1",
                participant_id=expired.id,
                party="af",
                valid_from=WITHDRAWN_AT,
                recorded_at=WITHDRAWN_AT,
                recorded_by="test",
            )
        )
        session.add(
            Subscription(
                participant_id=expired.id, party="af", active=False, changed_at=WITHDRAWN_AT
            )
        )
    purge_log(caseload, datetime.now(UTC), "cli:reviewer", confirmed=True)
    return caseload


def _participant(hub: Hub, pnr: str) -> Any:
    with hub.db.session() as session:
        return ParticipantRepository(session, hub.keys).find(parse_identity(pnr))


def _rows(hub: Hub, table: Any) -> int:
    with hub.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def _database_bytes(hub: Hub) -> bytes:
    """The SQLite file (and its WAL) as stored on disk, after a checkpoint."""
    with hub.db.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    path = hub.db.engine.url.database
    assert path
    files = (Path(path), Path(f"{path}-wal"))
    return b"".join(file.read_bytes() for file in files if file.exists())


def test_a_person_with_nothing_left_is_removed_entirely_with_one_entry(
    forgotten: Hub, cli: Any
) -> None:
    expired = _participant(forgotten, EXPIRED)
    ciphertext = bytes(expired.pnr_ciphertext)
    sqlite = forgotten.db.engine.dialect.name == "sqlite"
    if sqlite:
        assert ciphertext in _database_bytes(forgotten)

    done = purge_records(forgotten, JUNE_2026, "cli:admin", confirmed=True)

    assert (done.people, done.records, done.removed) == (0, 0, 3)
    for pnr in (EXPIRED, NO_CONSENT, WITHDRAWN):
        assert _participant(forgotten, pnr) is None
    for pnr in (RUNNING, PARTLY):
        assert _participant(forgotten, pnr) is not None
    assert _rows(forgotten, ParticipantRow) == 2
    assert _rows(forgotten, ConsentRow) == 2  # RUNNING's and PARTLY's
    assert _rows(forgotten, ConsentVersionRow) == 2
    assert _rows(forgotten, ConsentPartyRow) == 8
    assert _rows(forgotten, ConsentWithdrawalRow) == 1  # PARTLY's, for af
    assert _rows(forgotten, ConsentBlockRow) == 0
    assert _rows(forgotten, Subscription) == 0
    if sqlite:
        assert ciphertext not in _database_bytes(forgotten)

    readable = [e for e in ledger(forgotten.db) if e.get("participant")]
    assert sorted(e["participant"] for e in readable) == sorted(
        _pseudonym(forgotten, pnr) for pnr in (EXPIRED, NO_CONSENT, WITHDRAWN)
    )
    assert {e["action"] for e in readable} == {"records_purged"}
    assert {e["correlation_id"] for e in readable} == {done.correlation_id}
    assert all("participant removed" in e["reason"] for e in readable)

    assert cli("log", "verify").code == 0
    extract = cli("log", "extract", "--pnr", EXPIRED, "--format", "json")
    assert extract.code == 0, extract.err
    assert "participant removed" in extract.out

    again = purge_records(forgotten, JUNE_2026, "cli:admin", confirmed=True)
    assert again.removed == 0


def test_a_person_with_a_log_entry_still_readable_is_kept(forgotten: Hub) -> None:
    with forgotten.db.session() as session:
        append(
            session,
            LedgerEvent(
                action=Action.SUBJECT_ACCESS,
                actor="cli:admin",
                role=ActorRole.ADMINISTRATOR,
                participant=_pseudonym(forgotten, WITHDRAWN),
                reason="registerutdrag",
            ),
        )

    done = purge_records(forgotten, JUNE_2026, "cli:admin", confirmed=True)

    assert done.removed == 2
    assert _participant(forgotten, EXPIRED) is None
    assert _participant(forgotten, WITHDRAWN) is not None  # its records went earlier
    assert _records_of_one(forgotten, WITHDRAWN) == 0
    assert _rows(forgotten, ConsentRow) == 3


def test_a_person_whose_consent_still_runs_is_kept_without_records_or_log(
    forgotten: Hub,
) -> None:
    done = purge_records(forgotten, JUNE_2026, "cli:admin", confirmed=True)

    assert done.removed == 3
    assert _participant(forgotten, EXPIRED) is None
    assert _participant(forgotten, RUNNING) is not None  # no records, no log, consent runs
    assert _records_of_one(forgotten, RUNNING) == 0


def test_unconfirmed_it_removes_nobody_and_says_how_many_would_go(forgotten: Hub, cli: Any) -> None:
    before = ledger(forgotten.db)
    counted = cli("participants", "purge", "--consent-ended-before", "2026-06-01")

    assert counted.code == 2
    assert "0 stored records (0 outbox rows) of 0 people" in counted.err
    assert "and 3 people entirely" in counted.err
    assert "rerun with --yes to remove them" in counted.err
    assert _rows(forgotten, ParticipantRow) == 5
    assert _rows(forgotten, ConsentRow) == 4
    assert ledger(forgotten.db) == before

    done = cli("participants", "purge", "--consent-ended-before", "2026-06-01", "--yes")
    assert done.code == 0, done.err
    assert "and 3 people entirely" in done.err
    assert _rows(forgotten, ParticipantRow) == 2


def _records_of_one(hub: Hub, pnr: str) -> int:
    with hub.db.session() as session:
        person = ParticipantRepository(session, hub.keys).find(parse_identity(pnr))
        assert person is not None
        return int(
            session.scalar(select(func.count()).where(StoredRecord.participant_id == person.id))
            or 0
        )


def _version(version: int, days: int) -> ConsentFacts:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    return ConsentFacts(
        consent_id="c1",
        version=version,
        parties=frozenset({"af", "team"}),
        categories=frozenset({"referral"}),
        purposes=frozenset({"coordination"}),
        valid_from=start,
        valid_until=start + timedelta(days=days),
        recorded_at=start + timedelta(days=version - 1),
    )


def test_a_consent_ends_at_its_last_versions_end_or_its_whole_withdrawal() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    assert Snapshot.build().consent_ends_at() is None
    assert Snapshot.build([_version(1, 30)]).consent_ends_at() == start + timedelta(days=30)
    amended = Snapshot.build([_version(1, 30), _version(2, 90)])
    assert amended.consent_ends_at() == start + timedelta(days=90)
    whole = WithdrawalFacts("c1", up_to_version=2, at=start + timedelta(days=10))
    partial = WithdrawalFacts("c1", up_to_version=2, at=start + timedelta(days=5), party="af")
    withdrawn = Snapshot.build([_version(1, 30), _version(2, 90)], [partial, whole])
    assert withdrawn.consent_ends_at() == start + timedelta(days=10)
    only_partly = Snapshot.build([_version(1, 30)], [partial])
    assert only_partly.consent_ends_at() == start + timedelta(days=30)


def test_a_confirmed_purge_waits_for_a_running_sync(caseload: Hub, cli: Any) -> None:
    # The night may have read these people's records and be about to store them.
    before = _records_of(caseload)
    with connector_lock(caseload.db, "af"):
        with pytest.raises(LockHeldError, match="a retention purge must wait"):
            purge_records(caseload, JUNE_2026, "privacy-officer", confirmed=True)
        assert _records_of(caseload) == before
        with pytest.raises(InputError, match="this would remove"):  # counting need not wait
            purge_records(caseload, JUNE_2026, "privacy-officer", confirmed=False)
        refused = cli("participants", "purge", "--consent-ended-before", "2026-06-01", "--yes")
        assert refused.code == 3, refused.err
        assert "sync" in refused.err
    assert purge_records(caseload, JUNE_2026, "privacy-officer", confirmed=True).records


def test_a_purge_asks_the_log_once_for_everyone_on_postgresql(caseload: Hub) -> None:
    # 600 people without consent (more than one chunk of 500) besides the caseload: on
    # PostgreSQL the log is read once for all of them (a query per 500 people was a whole
    # scan of the log each: over a minute for 50,000); SQLite asks its per-block index per
    # chunk. Either way the same people would go.
    from sqlalchemy import event

    with caseload.db.session() as session:
        repository = ParticipantRepository(session, caseload.keys)
        for pnr in skatteverket_numbers(605)[5:]:
            repository.ensure(parse_identity(pnr))
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "ledger_entry.participant" in statement and "DISTINCT" in statement:
            statements.append(statement)

    event.listen(caseload.db.engine, "before_cursor_execute", seen)
    try:
        with pytest.raises(InputError, match=r"and 60\d people entirely"):
            purge_records(caseload, JUNE_2026, "privacy-officer", confirmed=False)
    finally:
        event.remove(caseload.db.engine, "before_cursor_execute", seen)
    assert len(statements) == (1 if caseload.db.dialect == "postgresql" else 2)


def test_who_is_still_in_the_log_is_found_for_any_number_of_people(caseload: Hub) -> None:
    # More people than one chunk of bound variables; on PostgreSQL one read of the log for
    # all of them (a query per 500 people was a whole scan each: over a minute for 50,000).
    from sqlalchemy import event

    from hub.consent.retention import _readable_in_log

    logged = {_pseudonym(caseload, pnr) for pnr in (EXPIRED, RUNNING, WITHDRAWN)}
    strangers = [f"p-{n:032x}" for n in range(1200)]
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(caseload.db.engine, "before_cursor_execute", seen)
    try:
        with caseload.db.session() as session:
            found = _readable_in_log(session, strangers[:600] + sorted(logged) + strangers[600:])
    finally:
        event.remove(caseload.db.engine, "before_cursor_execute", seen)
    assert found == logged
    if caseload.db.dialect == "postgresql":
        assert len(statements) == 2  # the log's last seq, then one query for everyone


def test_a_person_still_registered_at_an_authority_waits_for_the_sync_to_cancel_it(
    forgotten: Hub,
) -> None:
    # removed now, the authority would keep the person registered (it knows them by the
    # number removal deletes) and go on sending about them
    with forgotten.db.session() as session:
        session.execute(update(Subscription).values(active=True))

    done = purge_records(forgotten, JUNE_2026, "cli:admin", confirmed=True)

    assert done.removed == 2
    assert _participant(forgotten, EXPIRED) is not None
    assert _rows(forgotten, Subscription) == 1
    with forgotten.db.session() as session:  # the next sync cancels the registration
        session.execute(update(Subscription).values(active=False))
    assert purge_records(forgotten, JUNE_2026, "cli:admin", confirmed=True).removed == 1
    assert _participant(forgotten, EXPIRED) is None


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL: VACUUM's job
def test_purged_records_are_overwritten_where_sqlite_would_keep_deleted_rows(
    caseload: Hub,
) -> None:
    engine = caseload.db.engine

    def keep_deleted_rows(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA secure_delete = OFF")  # as some SQLite builds do

    event.listen(engine, "connect", keep_deleted_rows)
    engine.dispose()
    marker = "a note written only about this person"
    with caseload.db.session() as session:
        person = ParticipantRepository(session, caseload.keys).find(parse_identity(EXPIRED))
        assert person is not None
        add_record(
            session,
            person.id,
            origin="kommun",
            source_id="note-1",
            kind="referral",
            category="referral",
            body={"kind": "referral", "note": marker},
            at=WITHDRAWN_AT,
        )
    assert marker.encode() in _database_bytes(caseload)

    purge_records(caseload, JUNE_2026, "cli:admin", confirmed=True)

    assert marker.encode() not in _database_bytes(caseload)
    with engine.connect() as connection:  # the connection's own setting is back
        assert connection.exec_driver_sql("PRAGMA secure_delete").scalar() == 0
