"""Load gate snapshots from the database: the one bridge between storage and the gate."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from hub.consent.gate import BlockFacts, ConsentFacts, Snapshot, WithdrawalFacts
from hub.store.consents import ConsentRepository, GateRows
from hub.store.tables.consent import (
    ConsentBlockRow,
    ConsentWithdrawalRow,
)
from hub.store.tables.participant import ParticipantRow


class ConsentVersionLike(Protocol):
    """What the gate reads of a consent version: a stored row or a read-out view."""

    @property
    def version(self) -> int: ...
    @property
    def parties(self) -> Sequence[str]: ...
    @property
    def categories(self) -> Sequence[str]: ...
    @property
    def purposes(self) -> Sequence[str]: ...
    @property
    def valid_from(self) -> datetime: ...
    @property
    def valid_until(self) -> datetime: ...
    @property
    def recorded_at(self) -> datetime: ...


def consent_facts(consent_id: str, version: ConsentVersionLike) -> ConsentFacts:
    return ConsentFacts(
        consent_id=consent_id,
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


class Person(Protocol):
    """What a snapshot load needs of a participant (a ``ParticipantRow`` or a column row)."""

    @property
    def id(self) -> int: ...

    @property
    def protected_identity(self) -> bool: ...


class RevisedPerson(Person, Protocol):
    @property
    def consent_revision(self) -> int: ...


def load_snapshot(session: Session, participant: ParticipantRow) -> Snapshot:
    """The gate snapshot of one participant as stored now (in ``session``'s transaction)."""
    return load_snapshots(session, [participant])[participant.id]


SNAPSHOT_CHUNK = 500
"""People whose rows are read and built into snapshots at a time: the raw rows of one
chunk are all that is held besides the snapshots."""


def load_snapshots(session: Session, participants: Sequence[Person]) -> dict[int, Snapshot]:
    """Snapshots for many participants in a handful of queries, keyed by participant id.

    Reads only the columns the gate uses (no ORM objects, no sealed evidence): this runs
    for every batch of every sync, and for everyone at once in the nightly subscription
    check. So the rows are read and built :data:`SNAPSHOT_CHUNK` people at a time, and
    equal sets of parties, categories and purposes are one object: a city's 100,000
    consent versions name a handful of different sets, and a set of its own for each
    was most of what the snapshots of everyone held.
    """
    repo = ConsentRepository(session)
    shared: dict[frozenset[str], frozenset[str]] = {}

    def one(values: Iterable[str]) -> frozenset[str]:
        found = frozenset(values)
        return shared.setdefault(found, found)

    snapshots: dict[int, Snapshot] = {}
    for start in range(0, len(participants), SNAPSHOT_CHUNK):
        chunk = participants[start : start + SNAPSHOT_CHUNK]
        snapshots.update(_built(repo.gate_rows([p.id for p in chunk]), chunk, one))
    return snapshots


def _built(
    rows: GateRows, participants: Sequence[Person], one: Callable[[Iterable[str]], frozenset[str]]
) -> dict[int, Snapshot]:
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
                parties=one(rows.parties.get(version_id, ())),
                categories=cats,  # decoded once per distinct text by gate_rows
                purposes=purposes,
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


class SnapshotCache:
    """Gate snapshots kept across the batches of one run, each reloaded when it goes stale.

    A snapshot is stale when the person's ``consent_revision`` (bumped in the same
    transaction as every consent, withdrawal or block change) or protected-identity flag
    differs from the one it was loaded with. The caller passes the participant as read in
    its current transaction, so a change committed before that read is always seen: a
    cached snapshot never decides on older consents than a fresh load would.

    The cache holds at most ``limit`` people and is emptied when full, so its memory is
    bounded by the people, not the records, a run sees.
    """

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self._held: dict[int, tuple[int, bool, Snapshot]] = {}
        self.loads = 0  # people loaded from the database (for tests and profiling)

    def snapshots(self, session: Session, people: Sequence[RevisedPerson]) -> dict[int, Snapshot]:
        """Current snapshots of ``people``, keyed by participant id."""
        stale = []
        for person in people:
            held = self._held.get(person.id)
            if (
                held is None
                or held[0] != person.consent_revision
                or held[1] != person.protected_identity
            ):
                stale.append(person)
        if stale:
            if len(self._held) + len(stale) > self.limit:
                self._held.clear()
            loaded = load_snapshots(session, stale)
            self.loads += len(stale)
            for person in stale:
                self._held[person.id] = (
                    person.consent_revision,
                    person.protected_identity,
                    loaded[person.id],
                )
        return {person.id: self._held[person.id][2] for person in people}
