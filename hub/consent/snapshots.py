"""Load gate snapshots from the database: the one bridge between storage and the gate."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

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
    return BlockFacts(
        block_id=row.id,
        valid_from=row.valid_from,
        valid_until=_block_end(row.valid_until, row.lifted_at),
        party=row.party,
        category=row.category,
    )


def load_snapshot(session: Session, participant: ParticipantRow) -> Snapshot:
    """The gate snapshot of one participant as stored now (in ``session``'s transaction)."""
    return load_snapshots(session, [participant])[participant.id]


def load_snapshots(session: Session, participants: Sequence[ParticipantRow]) -> dict[int, Snapshot]:
    """Snapshots for many participants in a handful of queries, keyed by participant id.

    Reads only the columns the gate uses (no ORM objects, no sealed evidence): this runs
    for every batch of every sync.
    """
    rows = ConsentRepository(session).gate_rows([p.id for p in participants])
    facts: dict[int, list[ConsentFacts]] = defaultdict(list)
    for (
        pid,
        consent_id,
        version_id,
        version,
        cats,
        purposes,
        start,
        until,
        recorded,
    ) in rows.versions:
        facts[pid].append(
            ConsentFacts(
                consent_id=consent_id,
                version=version,
                parties=frozenset(rows.parties.get(version_id, ())),
                categories=frozenset(cats),
                purposes=frozenset(purposes),
                valid_from=start,
                valid_until=until,
                recorded_at=recorded,
            )
        )
    withdrawals: dict[int, list[WithdrawalFacts]] = defaultdict(list)
    for pid, consent_id, up_to, at, party, category in rows.withdrawals:
        withdrawals[pid].append(
            WithdrawalFacts(
                consent_id=consent_id, up_to_version=up_to, at=at, party=party, category=category
            )
        )
    blocks: dict[int, list[BlockFacts]] = defaultdict(list)
    for pid, block_id, start, until, lifted, party, category in rows.blocks:
        blocks[pid].append(
            BlockFacts(
                block_id=block_id,
                valid_from=start,
                valid_until=_block_end(until, lifted),
                party=party,
                category=category,
            )
        )
    return {
        p.id: Snapshot.build(
            facts[p.id],
            withdrawals[p.id],
            blocks[p.id],
            protected_identity=p.protected_identity,
        )
        for p in participants
    }


def _block_end(until: datetime | None, lifted: datetime | None) -> datetime | None:
    """A lifted block ends when it was lifted, or at its own end if that came first."""
    if lifted is None:
        return until
    return lifted if until is None else min(until, lifted)
