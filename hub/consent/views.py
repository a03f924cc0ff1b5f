"""Read models of a person's consents, and the ``evi consent list --json`` entry.

Built from stored rows by :class:`hub.consent.service.ConsentService`; the FHIR export
and the receipt render these, never rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from hub.consent.document import rfc3339
from hub.consent.gate import Snapshot
from hub.consent.snapshots import block_facts, consent_facts, withdrawal_facts
from hub.keys import KeyRing
from hub.model.identity import PersonalIdentity
from hub.store.consents import ConsentRepository
from hub.store.participants import ParticipantRepository
from hub.store.tables.consent import (
    ConsentBlockRow,
    ConsentRow,
    ConsentVersionRow,
    ConsentWithdrawalRow,
)
from hub.store.tables.participant import ParticipantRow

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


def version_view(consent_id: str, row: ConsentVersionRow) -> VersionView:
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
    consent: ConsentRow, withdrawals: list[ConsentWithdrawalRow], now: datetime
) -> ConsentHistory:
    """The consent's versions, withdrawals and status at ``now``.

    Status: ``withdrawn`` once wholly withdrawn; else ``active`` while a version is in
    force (the gate's notion: started, not expired, not superseded); else ``pending`` if a
    version starts later; else ``expired``.
    """
    versions = tuple(version_view(consent.id, v) for v in consent.versions)
    views = tuple(
        WithdrawalView(w.id, w.consent_id, w.up_to_version, w.party, w.category, w.at)
        for w in withdrawals
    )
    snapshot = Snapshot.build(
        [consent_facts(consent, v) for v in consent.versions],
        [withdrawal_facts(w) for w in withdrawals],
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
    return ConsentHistory(consent.id, versions, views, status, current)


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
        "blocks": [_block_json(b) for b in person.blocks],
        "versions": len(consent.versions),
        "recorded_at": rfc3339(v.recorded_at),
        "evidence": v.evidence_kind,
    }


def load_person(
    session: Session, participant: ParticipantRow, identity: PersonalIdentity, now: datetime
) -> PersonConsents:
    """The person's consents, withdrawals and blocks as stored, with statuses at ``now``."""
    repo = ConsentRepository(session)
    consents = repo.consents_of(participant.id)
    withdrawals = repo.withdrawals_of([c.id for c in consents])
    return PersonConsents(
        pseudonym=participant.pseudonym,
        identity=identity,
        protected_identity=participant.protected_identity,
        consents=tuple(
            consent_history(c, [w for w in withdrawals if w.consent_id == c.id], now)
            for c in consents
        ),
        blocks=tuple(block_view(b) for b in repo.blocks_of(participant.id)),
        as_of=now,
    )


def load_listing(session: Session, keys: KeyRing, now: datetime) -> list[dict[str, Any]]:
    """Every stored consent as :func:`listing_entry` renders it, oldest first."""
    participants = ParticipantRepository(session, keys)
    people: dict[int, PersonConsents] = {}
    entries = []
    for consent in ConsentRepository(session).all_consents():
        person = people.get(consent.participant_id)
        if person is None:
            row = session.get(ParticipantRow, consent.participant_id)
            if row is None:  # pragma: no cover - the foreign key forbids it
                continue
            person = load_person(session, row, participants.identity_of(row), now)
            people[row.id] = person
        history = next(c for c in person.consents if c.consent_id == consent.id)
        entries.append(listing_entry(person, history))
    return entries
