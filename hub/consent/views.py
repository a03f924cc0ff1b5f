"""Read models of a person's consents, and the ``evi consent list --json`` entry.

Built from stored rows by :class:`hub.consent.service.ConsentService`; the FHIR export
and the receipt render these, never rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from hub.consent.document import rfc3339
from hub.consent.gate import Snapshot, WithdrawalFacts
from hub.consent.snapshots import block_facts, consent_facts
from hub.keys import KeyRing
from hub.model.identity import PersonalIdentity
from hub.store.participants import ParticipantRepository, participant_columns
from hub.store.tables.consent import (
    ConsentBlockRow,
    ConsentPartyRow,
    ConsentRow,
    ConsentVersionRow,
    ConsentWithdrawalRow,
)
from hub.store.tables.participant import ParticipantRow

T = TypeVar("T")

Status = Literal["active", "pending", "expired", "withdrawn"]


@dataclass(frozen=True)
class VersionView:
    consent_id: str
    version: int
    parties: tuple[str, ...]
    categories: tuple[str, ...]
    purposes: tuple[str, ...]
    valid_from: datetime
    valid_until: datetime
    informed_by: str
    informed_at: datetime
    recorded_at: datetime
    recorded_by: str
    evidence_kind: str
    evidence_detail: str


@dataclass(frozen=True)
class WithdrawalView:
    id: str
    consent_id: str
    up_to_version: int
    party: str | None
    category: str | None
    at: datetime

    @property
    def whole(self) -> bool:
        return self.party is None and self.category is None


@dataclass(frozen=True)
class BlockView:
    """A block; ``valid_until`` is when it ends, counting a lift (``None``: open)."""

    id: str
    party: str | None
    category: str | None
    valid_from: datetime
    valid_until: datetime | None
    lifted_at: datetime | None


@dataclass(frozen=True)
class ConsentHistory:
    """One consent with every version; ``current`` is the version its status refers to."""

    consent_id: str
    versions: tuple[VersionView, ...]
    withdrawals: tuple[WithdrawalView, ...]
    status: Status
    current: VersionView

    @property
    def withdrawn_at(self) -> datetime | None:
        wholes = [w.at for w in self.withdrawals if w.whole]
        return min(wholes) if wholes else None

    @property
    def partial_withdrawals(self) -> tuple[WithdrawalView, ...]:
        return tuple(w for w in self.withdrawals if not w.whole)


@dataclass(frozen=True)
class PersonConsents:
    """Everything registered about one person's consent, as of ``as_of``."""

    pseudonym: str
    identity: PersonalIdentity
    protected_identity: bool
    consents: tuple[ConsentHistory, ...]
    blocks: tuple[BlockView, ...]
    as_of: datetime


def block_view(row: ConsentBlockRow) -> BlockView:
    facts = block_facts(row)
    return BlockView(
        id=row.id,
        party=row.party,
        category=row.category,
        valid_from=row.valid_from,
        valid_until=facts.valid_until,
        lifted_at=row.lifted_at,
    )


def consent_history(
    consent_id: str,
    versions: Sequence[VersionView],
    withdrawals: Sequence[WithdrawalView],
    now: datetime,
) -> ConsentHistory:
    """The consent's versions (in version order), withdrawals and status at ``now``.

    Status: ``withdrawn`` once wholly withdrawn; else ``active`` while a version is in
    force (the gate's notion: started, not expired, not superseded); else ``pending`` if a
    version starts later; else ``expired``.
    """
    views = tuple(withdrawals)
    snapshot = Snapshot.build(
        [consent_facts(consent_id, v) for v in versions],
        [WithdrawalFacts(w.consent_id, w.up_to_version, w.at, w.party, w.category) for w in views],
    )
    latest = versions[-1]
    in_force = snapshot.in_force(now)
    current = latest
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
    return ConsentHistory(consent_id, tuple(versions), views, status, current)


def _block_json(block: BlockView) -> dict[str, Any]:
    return {
        "id": block.id,
        "party": block.party,
        "category": block.category,
        "from": rfc3339(block.valid_from),
        "until": rfc3339(block.valid_until) if block.valid_until else None,
    }


def listing_entry(person: PersonConsents, consent: ConsentHistory) -> dict[str, Any]:
    """One element of ``evi consent list --json`` (the interface in docs/consent.md).

    ``pnr`` is ``null`` for a person with protected identity: they never appear by
    number in a list; ``participant`` (the pseudonym) identifies them to the ledger.
    """
    number = None if person.protected_identity else person.identity.number
    return _entry(
        person.pseudonym,
        person.protected_identity,
        number,
        consent,
        [_block_json(b) for b in person.blocks],
    )


def _entry(
    pseudonym: str,
    protected_identity: bool,
    number: str | None,
    consent: ConsentHistory,
    blocks: list[dict[str, Any]],
) -> dict[str, Any]:
    v = consent.current
    return {
        "id": consent.consent_id,
        "version": v.version,
        "pnr": number,
        "participant": pseudonym,
        "protected_identity": protected_identity,
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
        "blocks": blocks,
        "versions": len(consent.versions),
        "recorded_at": rfc3339(v.recorded_at),
        "evidence": v.evidence_kind,
    }


# -- loading ---------------------------------------------------------------------------------

# Both a person's read (``show``, ``export``, the register extract) and the whole listing
# load with the same few bulk queries, per chunk of consents: a fixed number of statements
# however many people there are, never one round of queries per person.

LISTING_CHUNK = 500
"""Consents per chunk of a listing, and ids per ``IN (...)`` list (well under SQLite's and
PostgreSQL's limits on bound parameters)."""


def _chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), LISTING_CHUNK):
        yield values[start : start + LISTING_CHUNK]


def load_histories(
    session: Session, consent_ids: Sequence[str], now: datetime
) -> dict[str, ConsentHistory]:
    """These consents with every version, withdrawals and status at ``now``, by id.

    Three statements per :data:`LISTING_CHUNK` consents (versions, their parties,
    withdrawals), plain columns only: no ORM objects, no sealed evidence.
    """
    v, p, w = ConsentVersionRow, ConsentPartyRow, ConsentWithdrawalRow
    # Core statements on the session's connection (its transaction): the ORM's result
    # handling would cost more than building the views.
    db = session.connection()
    versions: dict[str, list[VersionView]] = defaultdict(list)
    withdrawals: dict[str, list[WithdrawalView]] = defaultdict(list)
    for chunk in _chunks(consent_ids):
        parties: dict[int, list[str]] = defaultdict(list)
        for version_id, named in db.execute(
            select(p.version_id, p.party)
            .join(v, v.id == p.version_id)
            .where(v.consent_id.in_(chunk))
            .order_by(p.version_id, p.party)
        ):
            parties[version_id].append(named)
        for row in db.execute(
            select(
                v.id,
                v.consent_id,
                v.version,
                v.categories,
                v.purposes,
                v.valid_from,
                v.valid_until,
                v.informed_by,
                v.informed_at,
                v.recorded_at,
                v.recorded_by,
                v.evidence_kind,
                v.evidence_detail,
            )
            .where(v.consent_id.in_(chunk))
            .order_by(v.consent_id, v.version)
        ):
            versions[row.consent_id].append(
                VersionView(
                    consent_id=row.consent_id,
                    version=row.version,
                    parties=tuple(parties.get(row.id, ())),
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
            )
        for wid, consent_id, up_to, party, category, at in db.execute(
            select(w.id, w.consent_id, w.up_to_version, w.party, w.category, w.at)
            .where(w.consent_id.in_(chunk))
            .order_by(w.at, w.id)
        ):
            withdrawals[consent_id].append(
                WithdrawalView(wid, consent_id, up_to, party, category, at)
            )
    return {
        consent_id: consent_history(consent_id, versions[consent_id], withdrawals[consent_id], now)
        for consent_id in consent_ids
    }


def load_blocks(session: Session, participant_ids: Sequence[int]) -> dict[int, list[BlockView]]:
    """These people's blocks, oldest recorded first, by participant id (one statement per
    :data:`LISTING_CHUNK` people)."""
    found: dict[int, list[BlockView]] = defaultdict(list)
    for chunk in _chunks(participant_ids):
        for row in session.scalars(
            select(ConsentBlockRow)
            .where(ConsentBlockRow.participant_id.in_(chunk))
            .order_by(ConsentBlockRow.recorded_at, ConsentBlockRow.id)
        ):
            found[row.participant_id].append(block_view(row))
    return found


def load_person(
    session: Session, participant: ParticipantRow, identity: PersonalIdentity, now: datetime
) -> PersonConsents:
    """The person's consents, withdrawals and blocks as stored, with statuses at ``now``."""
    consent_ids = list(
        session.scalars(
            select(ConsentRow.id)
            .where(ConsentRow.participant_id == participant.id)
            .order_by(ConsentRow.created_at, ConsentRow.id)
        )
    )
    histories = load_histories(session, consent_ids, now)
    return PersonConsents(
        pseudonym=participant.pseudonym,
        identity=identity,
        protected_identity=participant.protected_identity,
        consents=tuple(histories[c] for c in consent_ids),
        blocks=tuple(load_blocks(session, [participant.id])[participant.id]),
        as_of=now,
    )


def count_listing(session: Session) -> tuple[int, int]:
    """How many consents are stored, and of how many people (one statement)."""
    consents, people = session.execute(
        select(func.count(ConsentRow.id), func.count(distinct(ConsentRow.participant_id)))
    ).one()
    return int(consents), int(people)


def listing_entries(
    session: Session, keys: KeyRing, now: datetime, *, numbers: bool = True
) -> Iterator[dict[str, Any]]:
    """Every stored consent as :func:`listing_entry` renders it, oldest first, one at a time.

    The consents are read in chunks of :data:`LISTING_CHUNK`, each with a fixed number of
    bulk statements (their versions, parties and withdrawals, their people and the
    people's blocks), so the statements grow with the chunks, not the people, and only one
    chunk is held at a time. A person's number is decrypted only to be shown: never for a
    protected identity, and not at all with ``numbers=False`` (then every ``pnr`` is
    ``None``; for the plain list, which shows pseudonyms only). Call it in one read
    transaction that sees a single snapshot (as
    :meth:`hub.consent.service.ConsentService.stream_listing` does), so every chunk agrees.
    """
    order = (
        select(ConsentRow.id, ConsentRow.participant_id)
        .order_by(ConsentRow.created_at, ConsentRow.id)
        .execution_options(yield_per=LISTING_CHUNK)
    )
    participants = ParticipantRepository(session, keys)
    for page in session.connection().execute(order).partitions():
        consent_ids = [row[0] for row in page]
        people_ids = sorted({row[1] for row in page})
        histories = load_histories(session, consent_ids, now)
        blocks = load_blocks(session, people_ids)
        people: dict[int, tuple[str, bool, str | None, list[dict[str, Any]]]] = {}
        for person in participant_columns(session, people_ids):
            number = None
            if numbers and not person.protected_identity:
                number = participants.identity_of(person).number
            people[person.id] = (
                person.pseudonym,
                person.protected_identity,
                number,
                [_block_json(b) for b in blocks.get(person.id, ())],
            )
        for consent_id, participant_id in page:
            pseudonym, protected, number, person_blocks = people[participant_id]
            # Each entry gets its own copy of the blocks: callers may change what they get.
            yield _entry(
                pseudonym,
                protected,
                number,
                histories[consent_id],
                [dict(b) for b in person_blocks],
            )
