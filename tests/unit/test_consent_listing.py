"""`evi consent list [--json]` over a caseload of many people: the same bytes as the
per-person reads always gave, a fixed number of statements however many people there are,
and no write lock held while it reads (a caseworker, a sync or the worker can write)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from filelock import FileLock, Timeout
from sqlalchemy import event
from test_consent_support import Clock, ledger, paper_submission, skatteverket_numbers

import hub.consent.views
from hub.consent.document import rfc3339
from hub.consent.gate import Snapshot
from hub.consent.service import ConsentService
from hub.consent.snapshots import consent_facts, withdrawal_facts
from hub.consent.views import (
    ConsentHistory,
    PersonConsents,
    Status,
    VersionView,
    WithdrawalView,
    block_view,
)
from hub.context import Hub
from hub.model.identity import parse_identity
from hub.model.vocab import Category
from hub.store.consents import ConsentRepository
from hub.store.participants import ParticipantRepository
from hub.store.tables.consent import ConsentRow, ConsentVersionRow, ConsentWithdrawalRow
from hub.store.tables.participant import ParticipantRow

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
PATTERNS = 6  # kinds of people in the caseload below; a caseload is a multiple of this
ACTIVE = "2099-01-01T00:00:00Z"


# -- a caseload with every kind of person --------------------------------------------------


def build_caseload(hub: Hub, numbers: list[str], clock: Clock) -> None:
    """Everyone gets a first consent in one import (one instant: ties ordered by id); then,
    by ``index % PATTERNS``, amendments, a later second consent (so one person's consents
    are apart in the list), partial and whole withdrawals, blocks (open, until, lifted),
    an expired and a pending consent, a protected identity."""
    service = ConsentService(hub, clock=clock)
    firsts = service.register_many(
        [paper_submission(n, **_first_terms(i)) for i, n in enumerate(numbers)], actor="cw"
    )
    clock.advance(hours=1)
    for i, (number, first) in enumerate(zip(numbers, firsts, strict=True)):
        person = parse_identity(number)
        kind = i % PATTERNS
        if kind == 1:  # amended (v2 adds fk), then kommun withdrawn; health blocked
            service.register(
                paper_submission(
                    number,
                    amends=first.consent_id,
                    parties=["kommun", "af", "fk", "team"],
                    valid_until=ACTIVE,
                ),
                actor="cw",
            )
            clock.advance(minutes=1)
            service.withdraw(person, actor="cw", party="kommun")
            service.block(person, actor="cw", category=Category.HEALTH)
        elif kind == 2:  # expired first consent; a lifted block, a block with an end
            block = service.block(person, actor="cw", party="af")
            clock.advance(minutes=1)
            service.lift_block(person, block.id, actor="cw")
            service.block(person, actor="cw", party="fk", until=datetime(2099, 6, 1, tzinfo=UTC))
        elif kind == 3:  # plan withdrawn, then the whole consent; af blocked until 2099
            service.withdraw(person, actor="cw", category=Category.PLAN)
            clock.advance(minutes=1)
            service.withdraw(person, actor="cw")
            service.block(person, actor="cw", party="af", until=datetime(2099, 1, 1, tzinfo=UTC))
        elif kind == 4:  # pending; protected identity
            with hub.db.session() as session:
                ParticipantRepository(session, hub.keys).ensure(person, protected_identity=True)
        clock.advance(seconds=1)
    clock.advance(hours=1)
    for i, number in enumerate(numbers):  # second consents, after everyone's first
        if i % PATTERNS in (2, 5):
            service.register(
                paper_submission(number, parties=["region", "team"], valid_until=ACTIVE),
                actor="cw",
            )
            clock.advance(seconds=1)


def _first_terms(index: int) -> dict[str, Any]:
    kind = index % PATTERNS
    if kind == 2:
        return {"valid_until": "2025-06-01T00:00:00Z"}  # expired by now
    if kind == 4:
        return {"valid_from": "2098-01-01T00:00:00Z", "valid_until": ACTIVE}  # pending
    return {"valid_until": ACTIVE}


# -- the listing as it was made before (one round of queries per person), kept as reference


def reference_listing(hub: Hub, now: datetime) -> list[dict[str, Any]]:
    """What `consent list --json` printed before it read in bulk: every consent through
    the person's own read (``consent show``), the ORM rows of each person."""
    with hub.db.session() as session:
        participants = ParticipantRepository(session, hub.keys)
        people: dict[int, PersonConsents] = {}
        entries = []
        for consent in ConsentRepository(session).all_consents():
            person = people.get(consent.participant_id)
            if person is None:
                row = session.get(ParticipantRow, consent.participant_id)
                assert row is not None
                person = _reference_person(session, row, participants.identity_of(row), now)
                people[row.id] = person
            history = next(c for c in person.consents if c.consent_id == consent.id)
            entries.append(_reference_entry(person, history))
        return entries


def _reference_person(session: Any, participant: ParticipantRow, identity: Any, now: datetime):
    repo = ConsentRepository(session)
    consents = repo.consents_of(participant.id)
    withdrawals = repo.withdrawals_of([c.id for c in consents])
    return PersonConsents(
        pseudonym=participant.pseudonym,
        identity=identity,
        protected_identity=participant.protected_identity,
        consents=tuple(
            _reference_history(c, [w for w in withdrawals if w.consent_id == c.id], now)
            for c in consents
        ),
        blocks=tuple(block_view(b) for b in repo.blocks_of(participant.id)),
        as_of=now,
    )


def _reference_history(
    consent: ConsentRow, withdrawals: list[ConsentWithdrawalRow], now: datetime
) -> ConsentHistory:
    versions = tuple(_reference_version(consent.id, v) for v in consent.versions)
    views = tuple(
        WithdrawalView(w.id, w.consent_id, w.up_to_version, w.party, w.category, w.at)
        for w in withdrawals
    )
    snapshot = Snapshot.build(
        [consent_facts(consent.id, v) for v in consent.versions],
        [withdrawal_facts(w) for w in withdrawals],
    )
    in_force = snapshot.in_force(now)
    current = versions[-1]
    status: Status
    if any(w.whole and w.at <= now for w in views):
        status = "withdrawn"
    elif in_force:
        status = "active"
        newest = max(in_force, key=lambda f: f.version)
        current = next(v for v in versions if v.version == newest.version)
    elif any(v.valid_from > now for v in versions):
        status = "pending"
    else:
        status = "expired"
    return ConsentHistory(consent.id, versions, views, status, current)


def _reference_version(consent_id: str, row: ConsentVersionRow) -> VersionView:
    return VersionView(
        consent_id=consent_id,
        version=row.version,
        parties=tuple(row.parties),
        categories=tuple(sorted(row.categories)),
        purposes=tuple(sorted(row.purposes)),
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        informed_by=row.informed_by,
        informed_at=row.informed_at,
        recorded_at=row.recorded_at,
        recorded_by=row.recorded_by,
        evidence_kind=row.evidence_kind,
        evidence_detail=row.evidence_detail,
    )


def _reference_entry(person: PersonConsents, consent: ConsentHistory) -> dict[str, Any]:
    v = consent.current
    return {
        "id": consent.consent_id,
        "version": v.version,
        "pnr": None if person.protected_identity else person.identity.number,
        "participant": person.pseudonym,
        "protected_identity": person.protected_identity,
        "status": consent.status,
        "parties": list(v.parties),
        "categories": list(v.categories),
        "purposes": list(v.purposes),
        "valid_from": rfc3339(v.valid_from),
        "valid_until": rfc3339(v.valid_until),
        "withdrawn_at": rfc3339(consent.withdrawn_at) if consent.withdrawn_at else None,
        "withdrawals": [
            {
                "id": w.id,
                "party": w.party,
                "category": w.category,
                "at": rfc3339(w.at),
                "up_to_version": w.up_to_version,
            }
            for w in consent.partial_withdrawals
        ],
        "blocks": [
            {
                "id": b.id,
                "party": b.party,
                "category": b.category,
                "from": rfc3339(b.valid_from),
                "until": rfc3339(b.valid_until) if b.valid_until else None,
            }
            for b in person.blocks
        ],
        "versions": len(consent.versions),
        "recorded_at": rfc3339(v.recorded_at),
        "evidence": v.evidence_kind,
    }


def reference_json(entries: list[dict[str, Any]]) -> str:
    """As `print_json` wrote the list."""
    return json.dumps(entries, ensure_ascii=False, indent=2, default=str) + "\n"


def reference_lines(entries: list[dict[str, Any]]) -> str:
    return "".join(
        f"{e['id']}  v{e['version']}  {e['status']:<9}  {e['participant']}  "
        f"{','.join(e['parties'])}  until {e['valid_until']}\n"
        for e in entries
    )


# -- the same output as before -------------------------------------------------------------


@pytest.fixture
def caseload(hub: Hub) -> Hub:
    build_caseload(hub, skatteverket_numbers(2 * PATTERNS), Clock())
    return hub


@pytest.mark.parametrize("chunk", [500, 4], ids=["one chunk", "chunks of 4"])
def test_the_listing_prints_the_same_bytes_as_before(
    caseload: Hub, cli: Any, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(hub.consent.views, "LISTING_CHUNK", chunk)
    as_json = cli("consent", "list", "--json")
    plain = cli("consent", "list")
    assert as_json.code == 0 and plain.code == 0, as_json.err + plain.err
    expected = reference_listing(caseload, datetime.now(UTC))
    # every kind of person and consent is there, and one person's consents are apart
    assert {e["status"] for e in expected} == {"active", "expired", "withdrawn", "pending"}
    assert any(e["withdrawals"] for e in expected) and any(e["blocks"] for e in expected)
    assert any(e["versions"] == 2 for e in expected) and any(e["pnr"] is None for e in expected)
    order = [e["participant"] for e in expected]
    assert len(set(order)) == 2 * PATTERNS and len(order) == 2 * PATTERNS + 4
    assert as_json.out == reference_json(expected)
    assert plain.out == reference_lines(expected)


def test_the_service_lists_what_it_listed_before(caseload: Hub) -> None:
    clock = Clock(datetime(2026, 6, 1, tzinfo=UTC))
    listed = ConsentService(caseload, clock=clock).listing(actor="test")
    assert listed == reference_listing(caseload, clock())
    (read,) = [e for e in ledger(caseload.db) if e["action"] == "consent_read"]
    assert read["reason"] == f"list: {2 * PATTERNS + 4} consents of {2 * PATTERNS} people"
    assert read["participant"] is None and read["time"].startswith("2026-06-01T00:00:00")


def test_an_empty_registry_lists_as_before(hub: Hub, cli: Any) -> None:
    assert cli("consent", "list", "--json").out == reference_json([]) == "[]\n"
    plain = cli("consent", "list")
    assert plain.code == 0 and plain.out == "" and "no consents registered" in plain.err


# -- a fixed number of statements ---------------------------------------------------------


def _statements_of_listing(hub: Hub) -> tuple[int, int]:
    """Statements the listing ran: all of them, and those reading consents or people."""
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(hub.db.engine, "before_cursor_execute", count)
    try:
        entries = ConsentService(hub).listing(actor="test", what="list json")
    finally:
        event.remove(hub.db.engine, "before_cursor_execute", count)
    assert entries
    reads = [s for s in seen if s.lstrip().startswith("SELECT") and "consent" in s]
    return len(seen), len(reads)


def test_listing_three_times_the_people_runs_the_same_statements(hub: Hub) -> None:
    """Before, each person cost about six statements of their own (5,000 people: 30,045)."""
    numbers = skatteverket_numbers(3 * PATTERNS)
    build_caseload(hub, numbers[:PATTERNS], Clock())
    statements, consent_reads = _statements_of_listing(hub)
    build_caseload(hub, numbers[PATTERNS:], Clock(datetime(2025, 3, 1, tzinfo=UTC)))
    assert _statements_of_listing(hub) == (statements, consent_reads)
    # the count; the consents in order; then per chunk versions, parties, withdrawals,
    # people, blocks
    assert consent_reads <= 7


# -- no write lock while reading -------------------------------------------------------------


@SQLITE_ONLY
def test_others_can_write_while_the_listing_reads(caseload: Hub, cli: Any) -> None:
    """Probed when the listing reads consent versions: another connection takes SQLite's
    write lock, and the hub's turn at it, at once."""
    path = caseload.db.engine.url.database
    assert path
    probes: list[tuple[bool, bool]] = []

    def probe(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "consent_version" not in statement or probes:
            return
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            database_free = True
        except sqlite3.OperationalError:
            database_free = False
        finally:
            other.close()
        turn = FileLock(path + "-writer", timeout=0)
        try:
            with turn:
                turn_free = True
        except Timeout:
            turn_free = False
        probes.append((database_free, turn_free))

    event.listen(caseload.db.engine, "before_cursor_execute", probe)
    try:
        listed = ConsentService(caseload).listing(actor="test")
    finally:
        event.remove(caseload.db.engine, "before_cursor_execute", probe)
    assert len(listed) == 2 * PATTERNS + 4
    assert probes == [(True, True)]


def test_writes_while_it_prints_do_not_change_what_is_listed(
    caseload: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listing reads one snapshot: a consent registered, or one of a later chunk
    withdrawn, while the first chunk is printed is not in it, and the count it logged is
    what it listed."""
    monkeypatch.setattr(hub.consent.views, "LISTING_CHUNK", 4)
    clock = Clock(datetime(2026, 6, 1, tzinfo=UTC))
    expected = reference_listing(caseload, clock())
    listed: Iterator[dict[str, Any]] = ConsentService(caseload, clock=clock).stream_listing(
        actor="test"
    )
    first = next(listed)
    later = ConsentService(caseload, clock=Clock(clock() - timedelta(days=1)))
    later.register(
        paper_submission(skatteverket_numbers(2 * PATTERNS + 1)[-1], valid_until=ACTIVE),
        actor="cw",
    )
    last = expected[-1]
    later.withdraw(parse_identity(last["pnr"]), actor="cw", consent_id=last["id"])
    assert [first, *listed] == expected
    (read,) = [e for e in ledger(caseload.db) if e["action"] == "consent_read"]
    assert read["reason"] == f"list: {len(expected)} consents of {2 * PATTERNS} people"
    now = ConsentService(caseload, clock=clock).listing(actor="test")
    assert len(now) == len(expected) + 1
    assert [e["status"] for e in now if e["id"] == last["id"]] == ["withdrawn"]
