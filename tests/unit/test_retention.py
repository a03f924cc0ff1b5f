"""Retention (gallring): the stored records of people whose consent has ended are removed
on request, each removal logged by pseudonym; everyone else's records stay."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from casework_support import store_records
from sqlalchemy import func, select
from test_consent_support import Clock, ledger, paper_submission, skatteverket_numbers

from hub.consent.gate import ConsentFacts, Snapshot, WithdrawalFacts
from hub.consent.retention import purge_records
from hub.consent.service import ConsentService
from hub.context import Hub
from hub.errors import InputError
from hub.model.identity import parse_identity
from hub.store.participants import ParticipantRepository
from hub.store.tables.consent import ConsentRow
from hub.store.tables.participant import ParticipantRow
from hub.store.tables.sync import OutboxItem, StoredRecord

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

    bad = cli("participants", "purge", "--consent-ended-before", "1 juni")
    assert bad.code == 2 and "--consent-ended-before" in bad.err


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
