"""What the hub holds about one person (registerutdrag, GDPR article 15), for the data
protection officer answering a subject access request.

Everything stored about the person: the identity facts (number, pseudonym, protected
identity, and the gender and birth year the statistics read from the number), which
authorities have been asked to report about them (subscriptions), every stored record from
the authorities (origin, kind, dates and content in the common model's codes), and their
consents, withdrawals and blocks (the consent receipt). What was disclosed to whom is the
transfer log's part: `evi log extract` makes that, with proofs.

The extract is for an official to review before it is handed over (a secrecy assessment,
of health data say, is theirs). It is never stored; making it is logged
(``subject_access``, by pseudonym). A number the hub does not know is an error that does
not repeat the number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from hub.consent.receipt import SWEDEN, render_receipt
from hub.consent.views import PersonConsents, listing_entry, load_person
from hub.context import Hub
from hub.errors import NotFoundError
from hub.ledger.event import Action, ActorRole, LedgerEvent
from hub.ledger.extract import CATEGORIES_SV, PARTIES_SV
from hub.ledger.writer import append
from hub.model.identity import PersonalIdentity
from hub.store.participants import ParticipantRepository
from hub.store.tables.sync import StoredRecord, Subscription


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
        }


@dataclass(frozen=True)
class HeldSubscription:
    party: str
    active: bool
    changed_at: datetime


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
            "consents": [listing_entry(self.consents, c) for c in self.consents.consents],
        }

    def as_text(self) -> str:
        """The extract in plain Swedish, for the person."""
        protected = "ja" if self.consents.protected_identity else "nej"
        lines = [
            "REGISTERUTDRAG: UPPGIFTER OM DIG I EN VÄG IN",
            "",
            f"Avser: {self.identity.formatted()}",
            f"Framtaget: {self.generated_at.astimezone(SWEDEN):%Y-%m-%d %H:%M} (svensk tid)",
            f"Skyddad identitet: {protected}",
            f"Kön och födelseår (ur personnumret, för statistik): "
            f"{'kvinna' if self.gender == 'female' else 'man'}, {self.birth_year}",
            "",
            "MYNDIGHETER SOM HAR OMBETTS ATT LÄMNA UPPGIFTER OM DIG",
            "",
        ]
        for s in self.subscriptions:
            state = "sedan" if s.active else "avslutat"
            changed = s.changed_at.astimezone(SWEDEN).date().isoformat()
            lines.append(f"  {_party(s.party)}: {state} {changed}")
        if not self.subscriptions:
            lines.append("  inga")
        lines += ["", f"UPPGIFTER SOM MYNDIGHETERNA HAR LÄMNAT OM DIG ({len(self.records)})", ""]
        for number, r in enumerate(self.records, start=1):
            day = r.updated_at.astimezone(SWEDEN).date().isoformat()
            category = CATEGORIES_SV.get(r.category, r.category)
            lines.append(f"{number}. {day} från {_party(r.origin)}: {category}")
            details = ", ".join(
                f"{k}: {v}" for k, v in r.body.items() if k != "kind" and v is not None
            )
            if details:
                lines.append(f"   {details}")
            if r.restricted:
                lines.append("   (hämtad med stöd av lag för ett enda ändamål; lämnas inte vidare)")
        if not self.records:
            lines.append("  inga")
        lines += [
            "",
            "Vilka uppgifter som har lämnats ut, till vem och när finns i överföringsloggen:",
            "be om ett utdrag ur den också.",
            "",
            render_receipt(self.consents).rstrip("\n")
            if self.consents.consents
            else "SAMTYCKEN\n\n  inga registrerade",
        ]
        return "\n".join(lines) + "\n"


def _party(code: str) -> str:
    return PARTIES_SV.get(code, code)


def held_data(hub: Hub, identity: PersonalIdentity, actor: str) -> HeldData:
    """Everything stored about ``identity``; the making of it is logged."""
    hub.require_schema()
    now = datetime.now(UTC)
    with hub.db.session(write_lock=True) as session:
        person = ParticipantRepository(session, hub.keys).find(identity)
        if person is None:
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
                )
                for r in records
            ],
            consents=load_person(session, person, identity, now),
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
