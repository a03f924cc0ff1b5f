"""What the hub holds about one person (registerutdrag, GDPR article 15), for the data
protection officer answering a subject access request.

Everything stored about the person: the identity facts (number, pseudonym, protected
identity, and the gender and birth year the statistics read from the number), which
authorities have been asked to report about them (subscriptions), every stored record from
the authorities (origin, kind, dates and content, with any original code of the authority's
that has no common code), the transfers of their records that are queued but not yet sent,
and their consents, withdrawals and blocks: every version as stored, with its evidence
opened (a signer's certificate read out), and the consent receipt. What was disclosed to
whom is the transfer log's part: `evi log extract` makes that, with proofs.

The text (:mod:`hub.casework.held_text`) is plain Swedish: field names, record kinds and
codes are the words the pages use (:mod:`hub.text.records`, from the hub's catalog),
parties and categories the transfer log extract's. The JSON carries the same with stable
English keys and the codes themselves.

The extract is for an official to review before it is handed over (a secrecy assessment,
of health data say, is theirs). It is never stored; making it is logged
(``subject_access``, by pseudonym). A number the hub does not know is an error that does
not repeat the number; that look-up is logged too (``not_a_participant``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.casework.held_text import NAME_ATTRIBUTES, extract_text
from hub.consent.document import rfc3339
from hub.consent.service import evidence_context
from hub.consent.views import PersonConsents, listing_entry, load_person
from hub.context import Hub
from hub.errors import NotFoundError
from hub.keys import KeyRing
from hub.ledger.event import Action, ActorRole, LedgerEvent, Outcome
from hub.ledger.writer import append
from hub.model.identity import PersonalIdentity
from hub.store.consents import ConsentRepository
from hub.store.participants import ParticipantRepository
from hub.store.tables.consent import ConsentBlockRow, ConsentVersionRow, ConsentWithdrawalRow
from hub.store.tables.sync import OutboxItem, StoredRecord, Subscription
from hub.sync.outbox import DEAD, PENDING


@dataclass(frozen=True)
class HeldRecord:
    origin: str
    source_id: str
    kind: str
    category: str
    updated_at: datetime
    stored_at: datetime
    restricted: bool
    body: dict[str, Any]
    unmapped: tuple[dict[str, Any], ...] = ()
    """The authority's own codes its mapping file did not know: ``{"field", "code"}``."""
    mapping_version: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "source_id": self.source_id,
            "kind": self.kind,
            "category": self.category,
            "updated_at": self.updated_at.isoformat(),
            "stored_at": self.stored_at.isoformat(),
            "restricted": self.restricted,
            "body": self.body,
            "unmapped": [dict(u) for u in self.unmapped],
            "mapping_version": self.mapping_version,
        }


@dataclass(frozen=True)
class HeldSubscription:
    party: str
    active: bool
    changed_at: datetime


@dataclass(frozen=True)
class HeldCertificate:
    """One certificate of a signature's chain, read out (the signer's first)."""

    subject: tuple[tuple[str, str], ...]
    """(attribute, value), attributes by their X.500 names (``commonName``, ``serialNumber``)."""
    issuer: tuple[tuple[str, str], ...]
    serial_number: str
    not_before: datetime
    not_after: datetime
    sha256: str

    def as_json(self) -> dict[str, Any]:
        return {
            "subject": [{"attribute": a, "value": v} for a, v in self.subject],
            "issuer": [{"attribute": a, "value": v} for a, v in self.issuer],
            "serial_number": self.serial_number,
            "not_before": rfc3339(self.not_before),
            "not_after": rfc3339(self.not_after),
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class HeldEvidence:
    """The evidence a consent version was registered with, as stored (sealed) and opened.

    ``stored`` is the evidence as the consent file gave it (``None`` if the hub's keys
    could not open it); ``certificates`` the signature's chain read out.
    """

    kind: str
    verifier: str
    detail: str
    stored: dict[str, Any] | None
    certificates: tuple[HeldCertificate, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "verifier": self.verifier,
            "detail": self.detail,
            "opened": self.stored is not None,
            "stored": self.stored,
            "certificates": [c.as_json() for c in self.certificates],
        }


@dataclass(frozen=True)
class HeldConsentVersion:
    """One stored version of a consent: every column of its row, the evidence opened."""

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
    evidence: HeldEvidence

    def as_json(self) -> dict[str, Any]:
        return {
            "consent_id": self.consent_id,
            "version": self.version,
            "parties": list(self.parties),
            "categories": list(self.categories),
            "purposes": list(self.purposes),
            "valid_from": rfc3339(self.valid_from),
            "valid_until": rfc3339(self.valid_until),
            "informed_by": self.informed_by,
            "informed_at": rfc3339(self.informed_at),
            "recorded_at": rfc3339(self.recorded_at),
            "recorded_by": self.recorded_by,
            "evidence": self.evidence.as_json(),
        }


@dataclass(frozen=True)
class HeldWithdrawal:
    id: str
    consent_id: str
    up_to_version: int
    party: str | None
    category: str | None
    at: datetime
    recorded_by: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "consent_id": self.consent_id,
            "up_to_version": self.up_to_version,
            "party": self.party,
            "category": self.category,
            "at": rfc3339(self.at),
            "recorded_by": self.recorded_by,
        }


@dataclass(frozen=True)
class HeldBlock:
    id: str
    party: str | None
    category: str | None
    valid_from: datetime
    valid_until: datetime | None
    recorded_at: datetime
    recorded_by: str
    lifted_at: datetime | None
    lifted_by: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "party": self.party,
            "category": self.category,
            "valid_from": rfc3339(self.valid_from),
            "valid_until": rfc3339(self.valid_until) if self.valid_until else None,
            "recorded_at": rfc3339(self.recorded_at),
            "recorded_by": self.recorded_by,
            "lifted_at": rfc3339(self.lifted_at) if self.lifted_at else None,
            "lifted_by": self.lifted_by,
        }


@dataclass(frozen=True)
class HeldTransfer:
    """A disclosure of one of the person's records, queued and not (yet) sent.

    ``pending`` waits for delivery; ``dead`` was given up after failed attempts and is sent
    only if an operator retries it (`evi transfers retry`). Why a delivery failed is not
    shown: the recipient's answer is not the person's data and may be anyone's.
    """

    origin: str
    source_id: str
    record_number: int | None
    """The record's number in the extract (1 = the first listed)."""
    recipient: str
    category: str
    purpose: str
    status: str
    queued_at: datetime
    attempts: int
    next_attempt_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "source_id": self.source_id,
            "recipient": self.recipient,
            "category": self.category,
            "purpose": self.purpose,
            "status": self.status,
            "queued_at": rfc3339(self.queued_at),
            "attempts": self.attempts,
            "next_attempt_at": rfc3339(self.next_attempt_at),
        }


@dataclass(frozen=True)
class HeldData:
    """Everything the hub stores about one person, as of ``generated_at``."""

    identity: PersonalIdentity
    participant: str
    gender: str
    birth_year: int
    generated_at: datetime
    subscriptions: list[HeldSubscription]
    records: list[HeldRecord]
    consents: PersonConsents
    consent_versions: tuple[HeldConsentVersion, ...] = ()
    withdrawals: tuple[HeldWithdrawal, ...] = ()
    blocks: tuple[HeldBlock, ...] = ()
    pending_transfers: tuple[HeldTransfer, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The extract as JSON (documented in docs/privacy.md)."""
        return {
            "subject": {"personal_identity": self.identity.formatted()},
            "participant": self.participant,
            "protected_identity": self.consents.protected_identity,
            "gender": self.gender,
            "birth_year": self.birth_year,
            "generated_at": self.generated_at.isoformat(),
            "subscriptions": [
                {"party": s.party, "active": s.active, "changed_at": s.changed_at.isoformat()}
                for s in self.subscriptions
            ],
            "records": [r.as_json() for r in self.records],
            "pending_transfers": [t.as_json() for t in self.pending_transfers],
            "consents": [listing_entry(self.consents, c) for c in self.consents.consents],
            "consent_versions": [v.as_json() for v in self.consent_versions],
            "consent_withdrawals": [w.as_json() for w in self.withdrawals],
            "consent_blocks": [b.as_json() for b in self.blocks],
        }

    def as_text(self) -> str:
        """The extract in plain Swedish, for the person."""
        return extract_text(self)


def _name_parts(name: x509.Name) -> tuple[tuple[str, str], ...]:
    return tuple(
        (
            NAME_ATTRIBUTES.get(attribute.oid, (attribute.oid.dotted_string, ""))[0],
            attribute.value if isinstance(attribute.value, str) else attribute.value.hex(),
        )
        for attribute in name
    )


def _read_certificates(stored: dict[str, Any]) -> tuple[HeldCertificate, ...]:
    """A signature's certificates read out; one that cannot be read is left to the PEM."""
    read = []
    for pem in stored.get("certificates") or []:
        try:
            cert = x509.load_pem_x509_certificate(str(pem).encode())
        except ValueError:
            continue
        read.append(
            HeldCertificate(
                subject=_name_parts(cert.subject),
                issuer=_name_parts(cert.issuer),
                serial_number=f"{cert.serial_number:x}",
                not_before=cert.not_valid_before_utc,
                not_after=cert.not_valid_after_utc,
                sha256=cert.fingerprint(hashes.SHA256()).hex(),
            )
        )
    return tuple(read)


def _evidence(keys: KeyRing, consent_id: str, row: ConsentVersionRow) -> HeldEvidence:
    """The version's evidence, unsealed with the hub's keys (as `evi consent evidence`)."""
    try:
        opened = json.loads(
            keys.decrypt_secret(row.evidence_sealed, evidence_context(consent_id, row.version))
        )
    except (InvalidTag, ValueError):  # a key lost or a blob damaged: said in the extract
        opened = None
    stored = opened if isinstance(opened, dict) else None
    return HeldEvidence(
        kind=row.evidence_kind,
        verifier=row.evidence_verifier,
        detail=row.evidence_detail,
        stored=stored,
        certificates=_read_certificates(stored)
        if stored and row.evidence_kind == "signature"
        else (),
    )


def _consent_rows(
    session: Session, keys: KeyRing, participant_id: int
) -> tuple[tuple[HeldConsentVersion, ...], tuple[HeldWithdrawal, ...], tuple[HeldBlock, ...]]:
    """Every stored row of the person's consents, withdrawals and blocks, each column."""
    repo = ConsentRepository(session)
    consents = repo.consents_of(participant_id)
    versions = tuple(
        HeldConsentVersion(
            consent_id=c.id,
            version=v.version,
            parties=tuple(v.parties),
            categories=tuple(sorted(v.categories)),
            purposes=tuple(sorted(v.purposes)),
            valid_from=v.valid_from,
            valid_until=v.valid_until,
            informed_by=v.informed_by,
            informed_at=v.informed_at,
            recorded_at=v.recorded_at,
            recorded_by=v.recorded_by,
            evidence=_evidence(keys, c.id, v),
        )
        for c in consents
        for v in c.versions
    )
    withdrawals: list[ConsentWithdrawalRow] = repo.withdrawals_of([c.id for c in consents])
    blocks: list[ConsentBlockRow] = repo.blocks_of(participant_id)
    return (
        versions,
        tuple(
            HeldWithdrawal(
                w.id, w.consent_id, w.up_to_version, w.party, w.category, w.at, w.recorded_by
            )
            for w in sorted(withdrawals, key=lambda w: (w.at, w.id))
        ),
        tuple(
            HeldBlock(
                id=b.id,
                party=b.party,
                category=b.category,
                valid_from=b.valid_from,
                valid_until=b.valid_until,
                recorded_at=b.recorded_at,
                recorded_by=b.recorded_by,
                lifted_at=b.lifted_at,
                lifted_by=b.lifted_by,
            )
            for b in blocks
        ),
    )


def _queued_transfers(
    session: Session, participant_id: int, records: Sequence[StoredRecord]
) -> tuple[HeldTransfer, ...]:
    """The person's outbox rows not (yet) sent: waiting, or given up on. Delivered and
    denied ones are in the transfer log (`evi log extract`)."""
    numbers = {r.id: (number, r.source_id) for number, r in enumerate(records, start=1)}
    items = session.scalars(
        select(OutboxItem)
        .where(OutboxItem.participant_id == participant_id)
        .where(OutboxItem.status.in_((PENDING, DEAD)))
        .order_by(OutboxItem.created_at, OutboxItem.id)
    ).all()
    return tuple(
        HeldTransfer(
            origin=item.origin,
            source_id=numbers.get(item.record_id, (None, ""))[1],
            record_number=numbers.get(item.record_id, (None, ""))[0],
            recipient=item.recipient,
            category=item.category,
            purpose=item.purpose,
            status=item.status,
            queued_at=item.created_at,
            attempts=item.attempts,
            next_attempt_at=item.next_attempt_at,
        )
        for item in items
    )


def held_data(hub: Hub, identity: PersonalIdentity, actor: str) -> HeldData:
    """Everything stored about ``identity``; the making of it is logged."""
    hub.require_schema()
    keys = hub.keys  # before our write lock: opening the key ring may itself write
    now = datetime.now(UTC)
    with hub.db.session(write_lock=True) as session:
        person = ParticipantRepository(session, keys).find(identity)
        if person is None:
            # A failed look-up is on record too (as a caseworker's is), by pseudonym.
            append(
                session,
                LedgerEvent(
                    time=now,
                    action=Action.SUBJECT_ACCESS,
                    outcome=Outcome.MINOR_FAILURE,
                    actor=actor,
                    role=ActorRole.PRIVACY_OFFICER,
                    participant=keys.pseudonym(identity.number),
                    reason="not_a_participant",
                ),
            )
            session.commit()  # kept although the look-up ends in NotFoundError
            raise NotFoundError("the hub holds nothing about that number: not a participant")
        records = session.scalars(
            select(StoredRecord)
            .where(StoredRecord.participant_id == person.id)
            .order_by(StoredRecord.updated_at, StoredRecord.id)
        ).all()
        subscriptions = session.scalars(
            select(Subscription)
            .where(Subscription.participant_id == person.id)
            .order_by(Subscription.party)
        ).all()
        versions, withdrawals, blocks = _consent_rows(session, keys, person.id)
        held = HeldData(
            identity=identity,
            participant=person.pseudonym,
            gender=person.gender,
            birth_year=person.birth_year,
            generated_at=now,
            subscriptions=[
                HeldSubscription(s.party, s.active, s.changed_at) for s in subscriptions
            ],
            records=[
                HeldRecord(
                    origin=r.source,
                    source_id=r.source_id,
                    kind=r.kind,
                    category=r.category,
                    updated_at=r.updated_at,
                    stored_at=r.stored_at,
                    restricted=r.restricted,
                    body=dict(r.body),
                    unmapped=tuple(dict(u) for u in r.unmapped or ()),
                    mapping_version=r.mapping_version,
                )
                for r in records
            ],
            consents=load_person(session, person, identity, now),
            consent_versions=versions,
            withdrawals=withdrawals,
            blocks=blocks,
            pending_transfers=_queued_transfers(session, person.id, records),
        )
        append(
            session,
            LedgerEvent(
                time=now,
                action=Action.SUBJECT_ACCESS,
                actor=actor,
                role=ActorRole.PRIVACY_OFFICER,
                participant=person.pseudonym,
                reason=f"registerutdrag: {len(records)} stored records, "
                f"{len(held.consents.consents)} consents",
            ),
        )
    return held
