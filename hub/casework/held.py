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

The text is plain Swedish: field names, record kinds and codes are the words the pages use
(:mod:`hub.text.records`, from the hub's catalog), parties and categories the transfer log
extract's. The JSON carries the same with stable English keys and the codes themselves.

The extract is for an official to review before it is handed over (a secrecy assessment,
of health data say, is theirs). It is never stored; making it is logged
(``subject_access``, by pseudonym). A number the hub does not know is an error that does
not repeat the number; that look-up is logged too (``not_a_participant``).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.consent.document import rfc3339
from hub.consent.receipt import SWEDEN, render_receipt
from hub.consent.service import evidence_context
from hub.consent.views import PersonConsents, listing_entry, load_person
from hub.context import Hub
from hub.errors import NotFoundError
from hub.keys import KeyRing
from hub.ledger.event import Action, ActorRole, LedgerEvent, Outcome
from hub.ledger.extract import CATEGORIES_SV, PARTIES_SV, PURPOSES_SV
from hub.ledger.writer import append
from hub.model.identity import PersonalIdentity
from hub.store.consents import ConsentRepository
from hub.store.participants import ParticipantRepository
from hub.store.tables.consent import ConsentBlockRow, ConsentVersionRow, ConsentWithdrawalRow
from hub.store.tables.sync import OutboxItem, StoredRecord, Subscription
from hub.sync.outbox import DEAD, PENDING
from hub.text.records import details_text, kind_text


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
            lines.append(f"{number}. {day} från {_party(r.origin)}: {kind_text('sv', r.kind)}")
            details = details_text("sv", r.body, party_name=_party)
            if details:
                lines += _wrapped(details, "   ")
            for code in r.unmapped:
                lines += _wrapped(
                    f'originalkoden från {_party(r.origin)}: "{code.get("code")}" i fältet '
                    f'"{code.get("field")}" (saknar motsvarighet bland de gemensamma koderna)',
                    "   ",
                )
            if r.restricted:
                lines.append("   (hämtad med stöd av lag för ett enda ändamål; lämnas inte vidare)")
        if not self.records:
            lines.append("  inga")
        lines += [
            "",
            f"UPPGIFTER OM DIG SOM SKA LÄMNAS UT MEN ÄNNU INTE HAR SKICKATS "
            f"({len(self.pending_transfers)})",
            "",
            *_transfer_lines(self.pending_transfers),
            "",
            "Vilka uppgifter som har lämnats ut, till vem och när finns i överföringsloggen:",
            "be om ett utdrag ur den också.",
        ]
        if self.consent_versions or self.blocks:
            lines += ["", *_stored_consent_lines(self)]
        lines += [
            "",
            render_receipt(self.consents).rstrip("\n")
            if self.consents.consents
            else "SAMTYCKEN\n\n  inga registrerade",
        ]
        return "\n".join(lines) + "\n"


def _party(code: str) -> str:
    return PARTIES_SV.get(code, code)


def _category(code: str) -> str:
    return CATEGORIES_SV.get(code, code)


def _when(value: datetime) -> str:
    """Swedish local time to the minute, as the extract's heading gives it."""
    return f"{value.astimezone(SWEDEN):%Y-%m-%d %H:%M}"


def _wrapped(text: str, indent: str, width: int = 92) -> list[str]:
    return textwrap.wrap(
        text, width, initial_indent=indent, subsequent_indent=indent + "  ", break_on_hyphens=False
    ) or [indent]


def _transfer_lines(transfers: tuple[HeldTransfer, ...]) -> list[str]:
    lines: list[str] = []
    for t in transfers:
        which = f"uppgift {t.record_number}" if t.record_number else "en uppgift"
        lines += _wrapped(
            f"{which} ({_category(t.category)} från {_party(t.origin)}) till "
            f"{_party(t.recipient)}, för {PURPOSES_SV.get(t.purpose, t.purpose)}",
            "  ",
        )
        if t.status == DEAD:
            state = (
                f"lades i kö {_when(t.queued_at)} men gick inte att skicka efter {t.attempts} "
                "försök; skickas bara om den som driftar navet försöker igen"
            )
        else:
            state = f"i kö sedan {_when(t.queued_at)}"
        lines += _wrapped(state, "    ")
    return lines or ["  inga"]


_NAME_ATTRIBUTES: Final = {
    # X.500 attribute → (the JSON's name, the text's Swedish)
    NameOID.COMMON_NAME: ("commonName", "namn"),
    NameOID.GIVEN_NAME: ("givenName", "förnamn"),
    NameOID.SURNAME: ("surname", "efternamn"),
    NameOID.SERIAL_NUMBER: ("serialNumber", "serienummer"),  # in a Swedish e-ID: the number
    NameOID.PSEUDONYM: ("pseudonym", "pseudonym"),
    NameOID.TITLE: ("title", "titel"),
    NameOID.EMAIL_ADDRESS: ("emailAddress", "e-post"),
    NameOID.ORGANIZATION_NAME: ("organizationName", "organisation"),
    NameOID.ORGANIZATIONAL_UNIT_NAME: ("organizationalUnitName", "avdelning"),
    NameOID.ORGANIZATION_IDENTIFIER: ("organizationIdentifier", "organisationsnummer"),
    NameOID.LOCALITY_NAME: ("localityName", "ort"),
    NameOID.STATE_OR_PROVINCE_NAME: ("stateOrProvinceName", "län"),
    NameOID.COUNTRY_NAME: ("countryName", "land"),
}
_ATTRIBUTE_SV: Final = dict(_NAME_ATTRIBUTES.values())


def _name_parts(name: x509.Name) -> tuple[tuple[str, str], ...]:
    return tuple(
        (
            _NAME_ATTRIBUTES.get(attribute.oid, (attribute.oid.dotted_string, ""))[0],
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


def _name_text(parts: tuple[tuple[str, str], ...]) -> str:
    return "; ".join(f"{_ATTRIBUTE_SV.get(a, a)}: {v}" for a, v in parts) or "(inget namn)"


def _evidence_lines(evidence: HeldEvidence) -> list[str]:
    stored = evidence.stored
    if stored is None:
        return _wrapped(
            "Bevis: sparat krypterat, men det gick inte att öppna med navets nycklar; den som "
            "driftar navet behöver se över nycklarna innan utdraget lämnas ut.",
            "  ",
        )
    lines: list[str] = []
    if evidence.kind == "paper":
        lines.append("  Bevis: en underskriven samtyckesblankett på papper, inskannad")
        lines.append(f"    bevittnad av: {stored.get('witnessed_by')}")
        if stored.get("witnessed_at"):
            witnessed = datetime.fromisoformat(str(stored["witnessed_at"]).replace("Z", "+00:00"))
            lines.append(f"    bevittnad: {_when(witnessed)}")
        lines.append(
            f"    kontrollsumma (SHA-256) av den inskannade blanketten: "
            f"{stored.get('document_sha256')}"
        )
        lines.append("    (själva blanketten sparas inte i navet, bara kontrollsumman)")
    elif evidence.kind == "signature":
        lines.append("  Bevis: din elektroniska underskrift av samtycket")
        for index, cert in enumerate(evidence.certificates):
            whose = "ditt certifikat" if index == 0 else f"certifikat {index + 1} i kedjan"
            lines += _wrapped(f"{whose}: {_name_text(cert.subject)}", "    ")
            lines += _wrapped(f"utfärdat av: {_name_text(cert.issuer)}", "      ")
            lines.append(f"      giltigt {_when(cert.not_before)} till {_when(cert.not_after)}")
            lines.append(f"      certifikatets serienummer: {cert.serial_number}")
            lines.append(f"      fingeravtryck (SHA-256): {cert.sha256}")
        unread = len(stored.get("certificates") or []) - len(evidence.certificates)
        if unread:
            lines.append(f"    {unread} certifikat kunde inte läsas ut; de finns i JSON-formen")
        lines.append("    underskriften, kodad som base64:")
        lines += textwrap.wrap(
            str(stored.get("signature")), 76, initial_indent="      ", subsequent_indent="      "
        )
    else:
        lines.append(
            f'  Bevis: av slaget "{evidence.kind}", som ett tillägg till navet kontrollerar'
        )
        data = stored.get("data") or {}
        for key in sorted(data):
            lines += _wrapped(
                f"{key}: {json.dumps(data[key], ensure_ascii=False, sort_keys=True)}", "    "
            )
    lines += _wrapped(
        f"Kontrollen när samtycket registrerades ({evidence.verifier}) godkände beviset: "
        f"{evidence.detail} (kontrollens egen anteckning, på engelska)",
        "  ",
    )
    return lines


def _version_lines(v: HeldConsentVersion) -> list[str]:
    return [
        f"Samtycke {v.consent_id}, version {v.version}",
        *_wrapped(f"Parter: {', '.join(_party(p) for p in v.parties)}", "  "),
        *_wrapped(f"Uppgifter om: {', '.join(_category(c) for c in v.categories)}", "  "),
        *_wrapped(
            f"Ändamål: {', '.join(PURPOSES_SV.get(p, p) for p in v.purposes)}",
            "  ",
        ),
        f"  Gäller från {_when(v.valid_from)} till {_when(v.valid_until)}",
        f"  Du fick information om samtycket av {v.informed_by}, {_when(v.informed_at)}",
        f"  Registrerat i navet {_when(v.recorded_at)} av {v.recorded_by}",
        *_evidence_lines(v.evidence),
    ]


def _withdrawal_line(w: HeldWithdrawal) -> list[str]:
    what = []
    if w.party is not None:
        what.append(f"för {_party(w.party)}")
    if w.category is not None:
        what.append(f"för uppgifter om {_category(w.category)}")
    scope = " och ".join(what) if what else "hela samtycket"
    versions = "version 1" if w.up_to_version == 1 else f"version 1–{w.up_to_version}"
    return _wrapped(
        f"Återkallat {_when(w.at)}: {scope} ({versions} av samtycke {w.consent_id}); "
        f"registrerat av {w.recorded_by}",
        "  ",
    )


def _block_line(b: HeldBlock) -> list[str]:
    what = f"uppgifter om {_category(b.category)}" if b.category else "alla uppgifter"
    who = _party(b.party) if b.party else "alla parter"
    until = f"till {_when(b.valid_until)}" if b.valid_until else "tills vidare"
    text = (
        f"{what}, {who}: från {_when(b.valid_from)} {until}; registrerad "
        f"{_when(b.recorded_at)} av {b.recorded_by}"
    )
    if b.lifted_at is not None:
        text += f"; hävd {_when(b.lifted_at)} av {b.lifted_by}"
    return _wrapped(text, "  ")


def _stored_consent_lines(held: HeldData) -> list[str]:
    """Every stored version, withdrawal and block, with who registered it and the evidence."""
    lines = ["SAMTYCKEN OCH SPÄRRAR: ALLT SOM ÄR SPARAT", ""]
    for consent_id in dict.fromkeys(v.consent_id for v in held.consent_versions):
        for v in held.consent_versions:
            if v.consent_id == consent_id:
                lines += [*_version_lines(v), ""]
        withdrawals = [w for w in held.withdrawals if w.consent_id == consent_id]
        if withdrawals:
            lines += [*[line for w in withdrawals for line in _withdrawal_line(w)], ""]
    if held.blocks:
        lines += ["Spärrar:", *[line for b in held.blocks for line in _block_line(b)], ""]
    return lines[:-1] if lines[-1] == "" else lines


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
