"""The registry on a real database: versions, withdrawals, blocks, decisions in the ledger."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import func, select
from test_consent_gate_properties import CATEGORIES, PARTIES, PURPOSES, minute, snapshots_facts
from test_consent_support import Clock, ledger, ledger_bytes, paper_submission, skatteverket_numbers

from hub.consent.decisions import DecisionRequest, decide, gate_for, subscribers
from hub.consent.gate import Reason, Snapshot
from hub.consent.gate import decide as gate_decide
from hub.consent.service import ConsentService
from hub.consent.snapshots import load_snapshot
from hub.context import Hub
from hub.errors import InputError, NotFoundError
from hub.model.identity import parse_identity
from hub.model.vocab import Category
from hub.store.consents import ConsentRepository
from hub.store.participants import ParticipantRepository
from hub.store.tables.consent import ConsentBlockRow, ConsentVersionRow
from hub.store.tables.ledger import LedgerEntryRow
from hub.store.tables.participant import ParticipantRow

PNR, OTHER, THIRD = skatteverket_numbers(3)
PERSON = parse_identity(PNR)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(hub: Hub, clock: Clock) -> ConsentService:
    return ConsentService(hub, clock=clock)


def participant(hub: Hub, number: str = PNR) -> ParticipantRow:
    with hub.db.session() as session:
        row = ParticipantRepository(session, hub.keys).find(parse_identity(number))
        assert row is not None
        return row


def ask(
    hub: Hub,
    at,
    origin="af",
    recipient="team",
    category="plan",
    purpose="coordination",
    number=PNR,
    **kwargs,
):
    with hub.db.session() as session:
        return decide(
            session,
            participant(hub, number),
            origin,
            recipient,
            category,
            purpose,
            at,
            actor="job:test",
            **kwargs,
        )


def test_registering_makes_the_consent_decide_and_logs_it_by_pseudonym(
    hub: Hub, service: ConsentService, clock: Clock
) -> None:
    result = service.register(paper_submission(PNR), actor="cw:17")
    assert ask(hub, clock()).permitted
    registered, decided = ledger(hub.db)
    assert registered["action"] == "consent_registered"
    assert (registered["consent_id"], registered["consent_version"]) == (result.consent_id, 1)
    assert registered["participant"] == result.participant == hub.keys.pseudonym(PNR)
    assert decided["action"] == "decision" and decided["decision"] == "permit"
    assert PNR.encode() not in ledger_bytes(hub.db)


def test_an_amendment_is_a_new_version_and_the_old_one_is_kept(
    hub: Hub, service: ConsentService, clock: Clock
) -> None:
    first = service.register(paper_submission(PNR), actor="cw")
    clock.advance(days=3)
    amended = service.register(
        paper_submission(PNR, parties=["af", "fk", "team"], amends=first.consent_id), actor="cw"
    )
    assert (amended.consent_id, amended.version) == (first.consent_id, 2)
    person = service.person(PERSON, actor="test")
    (history,) = person.consents
    assert [v.version for v in history.versions] == [1, 2]
    assert history.versions[0].parties == ("af", "kommun", "team")
    assert ask(hub, clock(), origin="kommun").reason is Reason.PARTY_NOT_COVERED
    assert ask(hub, clock() - timedelta(days=1), origin="kommun").consent_version == 1
    assert ask(hub, clock(), origin="fk").consent_version == 2


def test_amending_someone_elses_or_a_withdrawn_consent_is_refused(
    hub: Hub, service: ConsentService
) -> None:
    mine = service.register(paper_submission(PNR), actor="cw").consent_id
    with pytest.raises(NotFoundError, match="no consent"):
        service.register(paper_submission(OTHER, amends=mine), actor="cw")
    service.withdraw(PERSON, actor="cw")
    with pytest.raises(InputError, match="was withdrawn"):
        service.register(paper_submission(PNR, amends=mine), actor="cw")
    with hub.db.session() as session:
        assert session.scalar(select(func.count()).select_from(ConsentVersionRow)) == 1


def test_withdrawal_stops_disclosure_from_the_instant_it_is_recorded(
    hub: Hub, service: ConsentService, clock: Clock
) -> None:
    service.register(paper_submission(PNR), actor="cw")
    before = clock()
    clock.advance(hours=2)
    (done,) = service.withdraw(PERSON, actor="cw")
    assert done.at == clock()
    assert ask(hub, before).permitted  # earlier transfers stay lawful
    assert ask(hub, clock()).reason is Reason.WITHDRAWN
    (history,) = service.person(PERSON, actor="test").consents
    assert history.status == "withdrawn" and history.withdrawn_at == clock()
    assert ledger(hub.db)[1]["action"] == "consent_withdrawn"


def test_partial_withdrawal_removes_only_the_named_party_or_category(
    hub: Hub, service: ConsentService, clock: Clock
) -> None:
    service.register(paper_submission(PNR), actor="cw")
    service.withdraw(PERSON, actor="cw", party="af")
    service.withdraw(PERSON, actor="cw", category=Category.ASSESSMENT)
    now = clock()
    assert ask(hub, now, origin="af").reason is Reason.WITHDRAWN
    assert ask(hub, now, origin="kommun", category="assessment").reason is Reason.WITHDRAWN
    assert ask(hub, now, origin="kommun", category="plan").permitted
    (history,) = service.person(PERSON, actor="test").consents
    assert history.status == "active" and len(history.partial_withdrawals) == 2


def test_withdrawing_what_no_consent_names_is_refused_and_changes_nothing(
    hub: Hub, service: ConsentService
) -> None:
    service.register(paper_submission(PNR), actor="cw")
    with pytest.raises(InputError, match="--party region"):
        service.withdraw(PERSON, actor="cw", party="region")
    with pytest.raises(InputError, match="--category health"):
        service.withdraw(PERSON, actor="cw", category=Category.HEALTH)
    with pytest.raises(NotFoundError):
        service.withdraw(parse_identity(OTHER), actor="cw")
    assert [e["action"] for e in ledger(hub.db)] == ["consent_registered"]
    assert service.person(PERSON, actor="test").consents[0].withdrawals == ()


def test_a_block_beats_the_consent_until_it_is_lifted(
    hub: Hub, service: ConsentService, clock: Clock
) -> None:
    service.register(paper_submission(PNR), actor="cw")
    block = service.block(PERSON, actor="cw", party="af")
    blocked = ask(hub, clock())
    assert (blocked.reason, blocked.block_id) == (Reason.BLOCKED, block.id)
    assert ask(hub, clock(), origin="kommun").permitted
    clock.advance(days=1)
    service.lift_block(PERSON, block.id, actor="cw")
    assert ask(hub, clock()).permitted
    assert ask(hub, clock() - timedelta(hours=1)).reason is Reason.BLOCKED
    with pytest.raises(InputError, match="already ended"):
        service.lift_block(PERSON, block.id, actor="cw")
    reasons = [e["reason"] for e in ledger(hub.db) if e["action"] == "block_recorded"]
    assert reasons == ["block_added", "block_lifted"]


def test_a_block_can_be_recorded_before_any_consent(hub: Hub, service: ConsentService) -> None:
    service.block(PERSON, actor="cw", category=Category.HEALTH)
    service.register(paper_submission(PNR, categories=["health", "plan"]), actor="cw")
    assert ask(hub, service.clock(), category="health").reason is Reason.BLOCKED


def test_every_decision_is_logged_with_its_reason_and_consent_version(
    hub: Hub, service: ConsentService, clock: Clock
) -> None:
    result = service.register(paper_submission(PNR), actor="cw")
    digest = "ab" * 32
    ask(hub, clock(), payload_sha256=digest, correlation_id="run-1", role="sync")
    ask(hub, clock(), category="health")
    ask(hub, clock(), origin="kommun", category="benefit", restricted_origin=True)
    permit, category_deny, restricted = ledger(hub.db)[1:]
    assert permit | {"salt": None, "time": None} == permit | {
        "salt": None,
        "time": None,
        "action": "decision",
        "decision": "permit",
        "outcome": "success",
        "reason": "covered",
        "origin": "af",
        "recipient": "team",
        "purpose": "coordination",
        "categories": ["plan"],
        "consent_id": result.consent_id,
        "consent_version": 1,
        "payload_sha256": digest,
        "participant": result.participant,
        "correlation_id": "run-1",
        "actor": "job:test",
        "role": "sync",
    }
    assert (category_deny["decision"], category_deny["reason"]) == ("deny", "category_not_covered")
    assert category_deny["outcome"] == "minor_failure"
    assert restricted["reason"] == "restricted_origin"


def test_a_decision_commits_or_rolls_back_with_the_callers_work(
    hub: Hub, service: ConsentService, clock: Clock
) -> None:
    service.register(paper_submission(PNR), actor="cw")
    row = participant(hub)
    with pytest.raises(RuntimeError), hub.db.session() as session:
        decide(session, row, "af", "team", "plan", "coordination", clock(), actor="job")
        raise RuntimeError("the sync step failed after deciding")
    with hub.db.session() as session:
        assert session.scalar(select(func.count()).select_from(LedgerEntryRow)) == 1


def test_many_records_for_one_person_share_one_snapshot(
    hub: Hub, service: ConsentService, clock: Clock
) -> None:
    service.register(paper_submission(PNR), actor="cw")
    now = clock()
    with hub.db.session() as session:
        gate = gate_for(session, participant(hub))
        decisions = gate.decide_many(
            [
                DecisionRequest("af", "team", "plan", "coordination", now),
                DecisionRequest("af", "team", "health", "coordination", now),
                DecisionRequest("kommun", "af", "referral", "coordination", now),
            ],
            actor="job:sync",
            correlation_id="run-7",
        )
    assert [d.permitted for d in decisions] == [True, False, True]
    logged = [e for e in ledger(hub.db) if e["action"] == "decision"]
    assert [e["correlation_id"] for e in logged] == ["run-7"] * 3


def test_the_gate_is_asked_again_at_send_time(
    hub: Hub, service: ConsentService, clock: Clock
) -> None:
    """A snapshot taken when queueing does not outlive a withdrawal before sending."""
    service.register(paper_submission(PNR), actor="cw")
    with hub.db.session() as session:
        queued = gate_for(session, participant(hub)).decide(
            "af", "team", "plan", "coordination", clock(), actor="job"
        )
    clock.advance(minutes=5)
    service.withdraw(PERSON, actor="cw")
    assert queued.permitted
    assert ask(hub, clock()).reason is Reason.WITHDRAWN


def test_naive_instants_are_refused(hub: Hub, service: ConsentService) -> None:
    service.register(paper_submission(PNR), actor="cw")
    with pytest.raises(ValueError, match="timezone-aware"):
        ask(hub, service.clock().replace(tzinfo=None))


def test_subscribers_are_the_people_whose_consent_names_the_party_now(
    hub: Hub, service: ConsentService, clock: Clock
) -> None:
    service.register(paper_submission(PNR), actor="cw")
    service.register(paper_submission(OTHER, parties=["fk", "team"]), actor="cw")
    service.register(paper_submission(THIRD), actor="cw")
    service.withdraw(parse_identity(THIRD), actor="cw", party="af")
    now = clock()
    with hub.db.session() as session:
        assert [p.pseudonym for p in subscribers(session, "af", now)] == [hub.keys.pseudonym(PNR)]
        assert len(subscribers(session, "team", now)) == 3
        assert subscribers(session, "af", now + timedelta(days=400)) == []
    service.block(PERSON, actor="cw", party="af")
    with hub.db.session() as session:
        assert subscribers(session, "af", clock()) == []


def test_protected_identity_comes_from_the_participant(
    hub: Hub, service: ConsentService, clock: Clock
) -> None:
    service.register(paper_submission(PNR, categories=["identity", "plan"]), actor="cw")
    with hub.db.session() as session:
        ParticipantRepository(session, hub.keys).ensure(PERSON, protected_identity=True)
    assert ask(hub, clock(), category="identity").reason is Reason.PROTECTED_IDENTITY
    assert ask(hub, clock(), category="plan").permitted
    (entry,) = service.listing(actor="test")
    assert entry["pnr"] is None and entry["protected_identity"] is True


@settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(facts=snapshots_facts())
def test_stored_snapshot_decides_like_the_facts(hub: Hub, facts) -> None:
    """What the hub loads from the database is the snapshot the property tests check."""
    consents, withdrawals, blocks, protected = facts
    ids: dict[str, str] = {}
    with hub.db.session() as session:
        people = ParticipantRepository(session, hub.keys)
        rows = session.scalars(select(ParticipantRow.pnr_lookup)).all()
        number = skatteverket_numbers(len(rows) + 1)[-1]  # a new person per example
        person = people.ensure(parse_identity(number), protected_identity=protected)
        repo = ConsentRepository(session)
        for facts_version in consents:
            if facts_version.consent_id not in ids:
                ids[facts_version.consent_id] = repo.create_consent(person.id, minute(0)).id
                session.flush()
            repo.add_version(
                ConsentVersionRow(
                    consent_id=ids[facts_version.consent_id],
                    version=facts_version.version,
                    categories=sorted(facts_version.categories),
                    purposes=sorted(facts_version.purposes),
                    valid_from=facts_version.valid_from,
                    valid_until=facts_version.valid_until,
                    informed_by="t",
                    informed_at=minute(0),
                    recorded_at=facts_version.recorded_at,
                    recorded_by="t",
                    evidence_kind="paper",
                    evidence_verifier="t",
                    evidence_detail="t",
                    evidence_sealed="",
                ),
                facts_version.parties,
            )
        for w in withdrawals:
            repo.add_withdrawal(
                ids[w.consent_id], w.up_to_version, w.at, "t", party=w.party, category=w.category
            )
        for b in blocks:
            repo.add_block(
                person.id,
                b.valid_from,
                "t",
                party=b.party,
                category=b.category,
                valid_until=b.valid_until,
            )
        session.flush()
        stored = load_snapshot(session, person)
    expected = Snapshot.build(
        [replace(v, consent_id=ids[v.consent_id]) for v in consents],
        [replace(w, consent_id=ids[w.consent_id]) for w in withdrawals],
        blocks,
        protected_identity=protected,
    )
    for at in range(0, 27, 3):
        for o in PARTIES:
            for c in CATEGORIES:
                for p in PURPOSES:
                    got = gate_decide(stored, o, "team", c, p, minute(at))
                    want = gate_decide(expected, o, "team", c, p, minute(at))
                    assert replace(got, block_id=None) == replace(want, block_id=None)


def test_a_consent_the_person_was_informed_of_later_than_now_is_refused(
    hub: Hub, service: ConsentService
) -> None:
    with pytest.raises(InputError, match="informed_at is in the future"):
        service.register(paper_submission(PNR, informed_at="2030-01-01T00:00:00Z"), actor="cw")
    assert ledger(hub.db) == []


# -- snapshot cache: a run's cached snapshots never lag behind the stored consents ----------


def test_every_consent_change_makes_a_cached_snapshot_reload_and_decide_anew(
    hub: Hub, service: ConsentService, clock: Clock
) -> None:
    from hub.consent.snapshots import SnapshotCache

    cache = SnapshotCache()
    first = service.register(paper_submission(PNR), actor="cw")

    def cached() -> Snapshot:
        with hub.db.session() as session:
            row = participant(hub)
            snapshot = cache.snapshots(session, [row])[row.id]
            # the cached snapshot decides like one loaded afresh, whatever changed
            fresh = load_snapshot(session, row)
            for party in ("af", "kommun", "fk"):
                at = clock()
                assert gate_decide(snapshot, party, "team", "plan", "coordination", at) == (
                    gate_decide(fresh, party, "team", "plan", "coordination", at)
                )
            return snapshot

    cached()
    cached()
    assert cache.loads == 1  # unchanged: served from the cache
    blocks: list[str] = []
    changes = [
        lambda: service.register(
            paper_submission(PNR, parties=["af", "fk", "team"], amends=first.consent_id),
            actor="cw",
        ),
        lambda: service.withdraw(PERSON, actor="cw", party="fk"),
        lambda: service.block(PERSON, actor="cw", party="af"),
        lambda: blocks.append(service.block(PERSON, actor="cw", party="kommun").id),
        lambda: service.lift_block(PERSON, blocks[0], actor="cw"),
        lambda: service.register_many([paper_submission(PNR)], actor="cw"),
        lambda: service.withdraw(PERSON, actor="cw"),
    ]
    for number, change in enumerate(changes, start=2):
        clock.advance(minutes=1)
        change()
        cached()
        assert cache.loads == number, f"change {number - 1} was not seen"
    assert not gate_decide(cached(), "af", "team", "plan", "coordination", clock()).permitted


def test_a_snapshot_loaded_in_a_unit_of_work_sees_its_own_unflushed_changes(
    hub: Hub, service: ConsentService, clock: Clock
) -> None:
    """Snapshots are read with plain column statements on the session's connection (the
    hot path); they still see a block, withdrawal or new consent the same unit of work
    added and has not yet flushed, as any query through the session would."""
    service.register(paper_submission(PNR, parties=["af", "team"]), actor="cw")
    with hub.db.session() as session:
        person = participant(hub)
        assert gate_decide(
            load_snapshot(session, person), "af", "team", "plan", "coordination", clock()
        ).permitted
        session.add(  # pending: nothing has flushed it (the repository's touch would)
            ConsentBlockRow(
                id="block-not-flushed",
                participant_id=person.id,
                party="af",
                valid_from=clock(),
                recorded_at=clock(),
                recorded_by="cw",
            )
        )
        decided = gate_decide(
            load_snapshot(session, person), "af", "team", "plan", "coordination", clock()
        )
    assert (decided.permitted, decided.reason) == (False, Reason.BLOCKED)
