"""Load gate snapshots from the database: the one bridge between storage and the gate."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy.orm import Session

from hub.consent.gate import BlockFacts, ConsentFacts, Snapshot, WithdrawalFacts
from hub.store.consents import ConsentRepository
from hub.store.tables.consent import (
    ConsentBlockRow,
    ConsentRow,
    ConsentVersionRow,
    ConsentWithdrawalRow,
)
from hub.store.tables.participant import ParticipantRow


def consent_facts(consent: ConsentRow, version: ConsentVersionRow) -> ConsentFacts:
    return ConsentFacts(
        consent_id=consent.id,
        version=version.version,
        parties=frozenset(version.parties),
        categories=frozenset(version.categories),
        purposes=frozenset(version.purposes),
        valid_from=version.valid_from,
        valid_until=version.valid_until,
        recorded_at=version.recorded_at,
    )


def withdrawal_facts(row: ConsentWithdrawalRow) -> WithdrawalFacts:
    return WithdrawalFacts(
        consent_id=row.consent_id,
        up_to_version=row.up_to_version,
        at=row.at,
        party=row.party,
        category=row.category,
    )


def block_facts(row: ConsentBlockRow) -> BlockFacts:
    """A lifted block ends when it was lifted, or at its own end if that came first."""
    until = row.valid_until
    if row.lifted_at is not None:
        until = row.lifted_at if until is None else min(until, row.lifted_at)
    return BlockFacts(
        block_id=row.id,
        valid_from=row.valid_from,
        valid_until=until,
        party=row.party,
        category=row.category,
    )


def load_snapshot(session: Session, participant: ParticipantRow) -> Snapshot:
    """The gate snapshot of one participant as stored now (in ``session``'s transaction)."""
    return load_snapshots(session, [participant])[participant.id]


def load_snapshots(session: Session, participants: Sequence[ParticipantRow]) -> dict[int, Snapshot]:
    """Snapshots for many participants in a handful of queries, keyed by participant id."""
    repo = ConsentRepository(session)
    ids = [p.id for p in participants]
    consents = repo.consents_of_many(ids)
    by_consent = {c.id: c.participant_id for c in consents}
    facts: dict[int, list[ConsentFacts]] = defaultdict(list)
    for consent in consents:
        for version in consent.versions:
            facts[consent.participant_id].append(consent_facts(consent, version))
    withdrawals: dict[int, list[WithdrawalFacts]] = defaultdict(list)
    for row in repo.withdrawals_of(list(by_consent)):
        withdrawals[by_consent[row.consent_id]].append(withdrawal_facts(row))
    blocks: dict[int, list[BlockFacts]] = defaultdict(list)
    for block in repo.blocks_of_many(ids):
        blocks[block.participant_id].append(block_facts(block))
    return {
        p.id: Snapshot.build(
            facts[p.id],
            withdrawals[p.id],
            blocks[p.id],
            protected_identity=p.protected_identity,
        )
        for p in participants
    }
