"""The consent registry's use cases: register (one or many), amend, withdraw, block, read.

Each method owns its transaction (``hub.db.session(write_lock=True)``) and records what
it did in the ledger inside that transaction, the participant by pseudonym only; reading
a person's consents, or listing everyone's, is recorded too (``consent_read``; the
listing reads without the write lock and records its read in a short write of its own). Gate
decisions are not made here but in :mod:`hub.consent.decisions`, in the caller's session.

Times come from ``clock`` (aware UTC), so withdrawals and blocks take effect at the
instant they are recorded; nothing here accepts a back- or forward-dated withdrawal.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from hub.clock import Clock, utc_now
from hub.connector.registry import known_parties
from hub.consent import bulk, events
from hub.consent.document import submission_document, submission_terms, terms_key
from hub.consent.errors import EvidenceRefusedError
from hub.consent.evidence import verify_evidence
from hub.consent.views import (
    BlockView,
    PersonConsents,
    block_view,
    count_listing,
    listing_entries,
    load_person,
)
from hub.errors import InputError, NotFoundError
from hub.ledger.event import Action, ActorRole, LedgerEvent, Outcome
from hub.ledger.writer import append, append_many
from hub.model.consent import ConsentSubmission, EvidenceVerdict
from hub.model.identity import PersonalIdentity
from hub.model.vocab import Category
from hub.store.consents import ConsentRepository
from hub.store.meta import require_current_keys
from hub.store.participants import ParticipantRepository
from hub.store.tables.consent import ConsentPartyRow, ConsentRow, ConsentVersionRow
from hub.store.tables.participant import ParticipantRow

if TYPE_CHECKING:
    from hub.context import Hub
    from hub.keys import KeyRing


@dataclass(frozen=True)
class Registered:
    """What :meth:`ConsentService.register` stored."""

    consent_id: str
    version: int
    participant: str
    verdict: EvidenceVerdict


@dataclass(frozen=True)
class Withdrawn:
    """One withdrawal row recorded by :meth:`ConsentService.withdraw`."""

    withdrawal_id: str
    consent_id: str
    up_to_version: int
    party: str | None
    category: str | None
    at: datetime


class ConsentService:
    """Consent registry use cases on an opened :class:`hub.context.Hub`."""

    def __init__(self, hub: Hub, *, clock: Clock = utc_now) -> None:
        self.hub = hub
        self.clock = clock

    # -- register and amend -------------------------------------------------------------------

    def register(self, submission: ConsentSubmission, *, actor: str) -> Registered:
        """Verify the evidence, then store the consent (or, with ``amends``, a new version).

        Raises :class:`EvidenceRefusedError` (nothing stored; the refusal is recorded in
        the ledger) or :class:`NotFoundError`/:class:`InputError` for a bad ``amends``.
        """
        hub = self._ready()
        keys = hub.keys
        identity = submission.pnr
        if submission.informed_at > self.clock():
            raise InputError("informed_at is in the future; give the time the person was informed")
        parties = known_parties(hub.plugins)
        unknown = sorted(set(submission.parties) - set(parties))
        if unknown:  # a consent naming a party that is none covers nothing for the one meant
            raise InputError(
                f"parties: {', '.join(unknown)} is not a party of this hub; one of "
                f"{', '.join(parties)}. Nothing was stored"
            )
        if submission.amends is not None:
            with hub.db.session() as session:
                self._amendable(session, identity, str(submission.amends))
        document = submission_document(submission)
        try:
            verdict = verify_evidence(hub.plugins, submission.evidence, document, hub.settings)
        except EvidenceRefusedError as exc:
            with hub.db.session(write_lock=True) as session:
                append(
                    session,
                    events.refused(
                        self.clock(),
                        actor,
                        keys.pseudonym(identity.number),
                        str(submission.amends) if submission.amends else None,
                        tuple(c.value for c in submission.categories),
                    ),
                )
            raise exc from None
        now = self.clock()
        with hub.db.session(write_lock=True) as session:
            require_current_keys(session, keys)
            participants = ParticipantRepository(session, keys)
            repo = ConsentRepository(session)
            if submission.amends is not None:
                consent = self._amendable(session, identity, str(submission.amends), lock=True)
                participant = participants.ensure(identity)
                version = repo.latest_version_number(consent.id) + 1
            else:
                participant = participants.ensure(identity)
                _refuse_a_second_copy(repo, participant.id, submission)
                consent = repo.create_consent(participant.id, now)
                session.flush()
                version = 1
            row = ConsentVersionRow(
                **_version_values(keys, consent.id, version, submission, verdict, now, actor)
            )
            repo.add_version(row, submission.parties)
            append(
                session,
                events.registered(
                    now,
                    actor,
                    participant.pseudonym,
                    consent.id,
                    version,
                    tuple(c.value for c in submission.categories),
                ),
            )
            return Registered(consent.id, version, participant.pseudonym, verdict)

    def register_many(
        self, submissions: Iterable[ConsentSubmission], *, actor: str
    ) -> list[Registered]:
        """Register many new consents: all of them, or (on any refusal) none.

        Each evidence is verified through the same hook as :meth:`register`, and each
        consent is stored with the same rows and ledger entry, in order; the whole batch is
        one transaction with one ledger append. Raises :class:`InputError` for an
        amendment (register those one by one) or a future ``informed_at``, and
        :class:`~hub.consent.bulk.BulkEvidenceRefusedError` naming every refused position
        (each refusal is recorded in the ledger, as :meth:`register` does; nothing else is
        stored).
        """
        hub = self._ready()
        keys = hub.keys
        batch = list(submissions)
        bulk.check_new_consents(batch, self.clock(), known_parties(hub.plugins))
        verdicts: list[EvidenceVerdict] = []
        refused: list[tuple[int, str]] = []
        for position, submission in enumerate(batch):
            document = submission_document(submission)
            try:
                verdicts.append(
                    verify_evidence(hub.plugins, submission.evidence, document, hub.settings)
                )
            except EvidenceRefusedError as exc:
                refused.append((position, exc.message))
        if refused:
            now = self.clock()
            with hub.db.session(write_lock=True) as session:
                append_many(
                    session,
                    [
                        events.refused(
                            now,
                            actor,
                            keys.pseudonym(batch[i].pnr.number),
                            None,
                            _category_values(batch[i]),
                        )
                        for i, _ in refused
                    ],
                )
            raise bulk.BulkEvidenceRefusedError(refused, len(batch))
        now = self.clock()
        with hub.db.session(write_lock=True) as session:
            # Core inserts (one statement per table): the ORM's unit of work would spend
            # most of the time on bookkeeping for rows nobody reads back here.
            require_current_keys(session, keys)
            people = bulk.participants_for(session, keys, [s.pnr for s in batch])
            consent_ids = [str(uuid.uuid4()) for _ in batch]
            session.execute(
                insert(ConsentRow),
                [
                    {"id": cid, "participant_id": people[s.pnr.number].id, "created_at": now}
                    for cid, s in zip(consent_ids, batch, strict=True)
                ],
            )
            version_ids = session.scalars(
                insert(ConsentVersionRow).returning(
                    ConsentVersionRow.id, sort_by_parameter_order=True
                ),
                [
                    _version_values(keys, cid, 1, s, v, now, actor)
                    for cid, s, v in zip(consent_ids, batch, verdicts, strict=True)
                ],
            ).all()
            session.execute(
                insert(ConsentPartyRow),
                [
                    {"version_id": vid, "party": party}
                    for vid, s in zip(version_ids, batch, strict=True)
                    for party in sorted(set(s.parties))
                ],
            )
            ConsentRepository(session).touch(people[s.pnr.number].id for s in batch)
            done = [
                Registered(cid, 1, people[s.pnr.number].pseudonym, v)
                for cid, s, v in zip(consent_ids, batch, verdicts, strict=True)
            ]
            append_many(
                session,
                [
                    events.registered(
                        now, actor, r.participant, r.consent_id, 1, _category_values(s)
                    )
                    for r, s in zip(done, batch, strict=True)
                ],
            )
        return done

    def _amendable(
        self, session: Session, identity: PersonalIdentity, consent_id: str, *, lock: bool = False
    ) -> ConsentRow:
        repo = ConsentRepository(session)
        consent = repo.get(consent_id, lock=lock)
        participant = ParticipantRepository(session, self.hub.keys).find(identity)
        if consent is None or participant is None or consent.participant_id != participant.id:
            raise NotFoundError(
                f"amends: no consent {consent_id} is registered for this person; check the id "
                "with `evi consent show --pnr …`, or leave 'amends' out to register a new consent"
            )
        if any(w.party is None and w.category is None for w in repo.withdrawals_of([consent.id])):
            raise InputError(
                f"amends: consent {consent_id} was withdrawn and cannot be amended; register a "
                "new consent instead (leave 'amends' out)"
            )
        return consent

    # -- withdraw -----------------------------------------------------------------------------

    def withdraw(
        self,
        identity: PersonalIdentity,
        *,
        actor: str,
        party: str | None = None,
        category: Category | None = None,
        consent_id: str | None = None,
    ) -> list[Withdrawn]:
        """Withdraw, from now on, the whole consent or only ``party`` and/or ``category``.

        Applies to ``consent_id``, or to every consent of the person that is neither
        expired nor wholly withdrawn. Earlier disclosures stay lawful; the gate denies
        from this instant. Returns one entry per consent affected.
        """
        hub = self._ready()
        now = self.clock()
        with hub.db.session(write_lock=True) as session:
            participant = self._participant(session, identity)
            repo = ConsentRepository(session)
            targets = self._withdrawable(repo, participant, consent_id, now)
            named = {p for c in targets for v in c.versions for p in v.parties}
            if party is not None and party not in named:
                raise InputError(
                    f"--party {party}: no consent of this person in force names that party; "
                    "see `evi consent show --pnr …`"
                )
            if category is not None and not any(
                category.value in v.categories for c in targets for v in c.versions
            ):
                raise InputError(
                    f"--category {category.value}: no consent of this person in force names "
                    "that category; see `evi consent show --pnr …`"
                )
            done: list[Withdrawn] = []
            entries: list[LedgerEvent] = []
            for consent in targets:
                latest = consent.versions[-1].version
                row = repo.add_withdrawal(
                    consent.id,
                    latest,
                    now,
                    actor,
                    party=party,
                    category=category.value if category else None,
                )
                done.append(Withdrawn(row.id, consent.id, latest, party, row.category, now))
                entries.append(
                    events.withdrawn(
                        now, actor, participant.pseudonym, consent.id, latest, party, row.category
                    )
                )
            append_many(session, entries)
            return done

    def _withdrawable(
        self,
        repo: ConsentRepository,
        participant: ParticipantRow,
        consent_id: str | None,
        now: datetime,
    ) -> list[ConsentRow]:
        consents = repo.consents_of(participant.id)
        withdrawals = repo.withdrawals_of([c.id for c in consents])
        whole = {w.consent_id for w in withdrawals if w.party is None and w.category is None}
        if consent_id is not None:
            chosen = [c for c in consents if c.id == consent_id]
            if not chosen:
                raise NotFoundError(
                    f"--consent {consent_id}: no such consent for this person; see "
                    "`evi consent show --pnr …`"
                )
            if consent_id in whole:
                raise InputError(f"--consent {consent_id}: already withdrawn; nothing to do")
            return chosen
        targets = [
            c
            for c in consents
            if c.id not in whole and max(v.valid_until for v in c.versions) > now
        ]
        if not targets:
            raise NotFoundError(
                "this person has no consent in force or pending to withdraw; see "
                "`evi consent show --pnr …`"
            )
        return targets

    # -- blocks -------------------------------------------------------------------------------

    def block(
        self,
        identity: PersonalIdentity,
        *,
        actor: str,
        party: str | None = None,
        category: Category | None = None,
        until: datetime | None = None,
    ) -> BlockView:
        """Record a block from now (until ``until``, or open). ``None`` party/category: any.

        A block beats every consent. It may be recorded for a person with no consent yet.
        """
        hub = self._ready()
        now = self.clock()
        if until is not None and until <= now:
            raise InputError("--until must be in the future (blocks take effect from now)")
        if party is not None:
            parties = known_parties(hub.plugins)
            if party not in parties:  # a block for a party that is none would stop nothing
                raise InputError(
                    f"--party {party}: not a party of this hub; one of {', '.join(parties)}"
                )
        with hub.db.session(write_lock=True) as session:
            require_current_keys(session, hub.keys)
            participant = ParticipantRepository(session, hub.keys).ensure(identity)
            row = ConsentRepository(session).add_block(
                participant.id,
                now,
                actor,
                party=party,
                category=category.value if category else None,
                valid_until=until,
            )
            append(session, events.block(now, actor, participant.pseudonym, party, row.category))
            session.flush()
            return block_view(row)

    def lift_block(self, identity: PersonalIdentity, block_id: str, *, actor: str) -> BlockView:
        """End a block now. Disclosures it stopped stay stopped; it no longer applies."""
        hub = self._ready()
        now = self.clock()
        with hub.db.session(write_lock=True) as session:
            participant = self._participant(session, identity)
            repo = ConsentRepository(session)
            row = repo.get_block(block_id)
            if row is None or row.participant_id != participant.id:
                raise NotFoundError(
                    f"--block {block_id}: no such block for this person; see "
                    "`evi consent show --pnr …`"
                )
            current = block_view(row)
            if current.valid_until is not None and current.valid_until <= now:
                raise InputError(f"--block {block_id}: has already ended; nothing to do")
            repo.lift_block(row, now, actor)
            append(
                session,
                events.block(
                    now, actor, participant.pseudonym, row.party, row.category, lifted=True
                ),
            )
            session.flush()
            return block_view(row)

    def protect(self, identity: PersonalIdentity, *, actor: str, lift: bool = False) -> bool:
        """Mark the person as having a protected identity (skyddad identitet), or with
        ``lift`` take the mark away; returns whether it changed (logged only then).

        An authority's record can set the mark too, but only once the person is registered
        with it by number; staff who know it mark the person before the first sync. From
        then the gate gives the number to no one (``protected_identity``): the next sync
        cancels every registration and transfers carry the pseudonym only. Only staff lift
        it; an authority's records never do. A person with no consent yet may be marked.
        """
        hub = self._ready()
        now = self.clock()
        with hub.db.session(write_lock=True) as session:
            require_current_keys(session, hub.keys)
            participants = ParticipantRepository(session, hub.keys)
            participant = participants.find(identity) if lift else participants.ensure(identity)
            if participant is None or participant.protected_identity == (not lift):
                return False
            participant.protected_identity = not lift
            ConsentRepository(session).touch([participant.id])  # cached gate answers go
            append(
                session, events.protection(now, actor, participant.pseudonym, protected=not lift)
            )
            return True

    # -- reading ------------------------------------------------------------------------------

    # Reads are disclosures too (being a client of the joint team is itself secret): each
    # appends a ``consent_read`` entry before the caller shows anything. One person's read
    # does so in the transaction that reads (short); the listing of everyone reads without
    # the write lock and appends its entry in a short transaction of its own.

    def person(
        self,
        identity: PersonalIdentity,
        *,
        actor: str,
        what: str = "show",
        role: str = ActorRole.ADMINISTRATOR.value,
    ) -> PersonConsents:
        """Everything registered about this person's consent; the read is logged first.

        The entry names the person by pseudonym, ``actor`` and ``role``, and ``what`` was
        made (``show``, ``export fhir``, ``export receipt``) with how many consents as its
        reason. A number the hub does not know is logged too (outcome ``minor_failure``,
        reason ``not_a_participant``, by that number's pseudonym), then NotFoundError.
        """
        hub = self._ready()
        found: PersonConsents | None = None
        with hub.db.session(write_lock=True) as session:
            now = self.clock()
            participant = ParticipantRepository(session, hub.keys).find(identity)
            if participant is None:
                pseudonym = hub.keys.pseudonym(identity.number)
                append(session, _read_event(now, actor, role, pseudonym, "not_a_participant"))
            else:
                found = load_person(session, participant, identity, now)
                reason = f"{what}: {len(found.consents)} consents"
                append(session, _read_event(now, actor, role, participant.pseudonym, reason))
        if found is None:
            raise NotFoundError(_NO_CONSENT)
        return found

    def listing(
        self, *, actor: str, what: str = "list", role: str = ActorRole.ADMINISTRATOR.value
    ) -> list[dict[str, Any]]:
        """Every consent as ``evi consent list --json`` prints it, oldest first, in a list;
        logged as :meth:`stream_listing` logs it."""
        return list(self.stream_listing(actor=actor, what=what, role=role))

    def stream_listing(
        self,
        *,
        actor: str,
        what: str = "list",
        role: str = ActorRole.ADMINISTRATOR.value,
        numbers: bool = True,
    ) -> Iterator[dict[str, Any]]:
        """Every consent as ``evi consent list --json`` prints it, oldest first, one at a
        time; the read is logged before the first is yielded: one entry without a
        participant, ``what`` (``list``, ``list json``) and how many consents of how many
        people as its reason. ``numbers=False`` decrypts no number (every ``pnr`` is
        ``None``): for a list that shows pseudonyms only.

        The listing never holds the write lock while it reads: it reads in one read-only
        transaction (a single snapshot: SQLite's in WAL mode, PostgreSQL's with REPEATABLE
        READ), and appends its entry in a short write transaction of its own once it has
        counted, before anything is read out. So a caseworker's look-up, a sync batch or the
        worker can write while a large listing is read and printed. Nothing is read or
        logged until the first element is asked for.
        """
        hub = self._ready()
        with hub.db.session() as session:
            if hub.db.dialect == "postgresql":
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            now = self.clock()
            consents, people = count_listing(session)
            with hub.db.session(write_lock=True) as log:
                reason = f"{what}: {consents} consents of {people} people"
                append(log, _read_event(now, actor, role, None, reason))
            yield from listing_entries(session, hub.keys, now, numbers=numbers)

    def evidence(self, identity: PersonalIdentity, consent_id: str, version: int) -> dict[str, Any]:
        """The evidence a version was registered with, unsealed (to demonstrate consent)."""
        hub = self._ready()
        with hub.db.session() as session:
            participant = self._participant(session, identity)
            consent = ConsentRepository(session).get(consent_id)
            found = [
                v
                for v in (consent.versions if consent else [])
                if v.version == version and consent and consent.participant_id == participant.id
            ]
            if not found:
                raise NotFoundError(
                    f"no version {version} of consent {consent_id} for this person; see "
                    "`evi consent show --pnr …`"
                )
            sealed = found[0].evidence_sealed
        data: dict[str, Any] = json.loads(
            hub.keys.decrypt_secret(sealed, evidence_context(consent_id, version))
        )
        return data

    def _ready(self) -> Hub:
        """The hub with its schema checked and keys loaded.

        Keys are loaded before any of our transactions begins: opening the key ring may
        itself write (first use), which must not wait on our own write lock.
        """
        self.hub.require_schema()
        self.hub.keys  # noqa: B018 - loads (and on first use records) the keys
        return self.hub

    def _participant(self, session: Session, identity: PersonalIdentity) -> ParticipantRow:
        participant = ParticipantRepository(session, self.hub.keys).find(identity)
        if participant is None:
            raise NotFoundError(_NO_CONSENT)
        return participant


_NO_CONSENT = (
    "no consent or block is registered for this person; register one with "
    "`evi consent register --file FILE`"
)


def _read_event(
    now: datetime, actor: str, role: str, pseudonym: str | None, reason: str
) -> LedgerEvent:
    """A read of the registry; ``not_a_participant``: a failed look-up."""
    return LedgerEvent(
        time=now,
        action=Action.CONSENT_READ,
        outcome=Outcome.MINOR_FAILURE if reason == "not_a_participant" else Outcome.SUCCESS,
        reason=reason,
        actor=actor,
        role=role,
        participant=pseudonym,
    )


def _category_values(submission: ConsentSubmission) -> tuple[str, ...]:
    return tuple(c.value for c in submission.categories)


def _refuse_a_second_copy(
    repo: ConsentRepository, participant_id: int, submission: ConsentSubmission
) -> None:
    """Refuse registering again what a consent of the person, not withdrawn, already says
    word for word, informed at the same instant: the same form registered twice (a double
    click, a file given twice) would be listed, and withdrawn, twice."""
    wanted = submission_terms(submission)
    consents = repo.consents_of(participant_id)
    withdrawn = {
        w.consent_id
        for w in repo.withdrawals_of([c.id for c in consents])
        if w.party is None and w.category is None
    }
    for consent in consents:
        if consent.id in withdrawn or not consent.versions:
            continue
        v = max(consent.versions, key=lambda row: row.version)
        held = terms_key(
            v.parties,
            v.categories,
            v.purposes,
            v.valid_from,
            v.valid_until,
            v.informed_by,
            v.informed_at,
        )
        if held == wanted:
            raise InputError(
                f"this consent is already registered: consent {consent.id} version "
                f"{v.version} has the same terms, informed at the same time; nothing was "
                "stored (to change it, register an amendment with amends)"
            )


def _version_values(
    keys: KeyRing,
    consent_id: str,
    version: int,
    submission: ConsentSubmission,
    verdict: EvidenceVerdict,
    now: datetime,
    actor: str,
) -> dict[str, Any]:
    """The columns of a consent version row (one for :meth:`register` and the bulk path)."""
    evidence = submission.evidence.model_dump(mode="json")
    return {
        "consent_id": consent_id,
        "version": version,
        "categories": sorted(c.value for c in submission.categories),
        "purposes": sorted(p.value for p in submission.purposes),
        "valid_from": submission.valid_from,
        "valid_until": submission.valid_until,
        "informed_by": submission.informed_by,
        "informed_at": submission.informed_at,
        "recorded_at": now,
        "recorded_by": actor,
        "evidence_kind": submission.evidence.kind,
        "evidence_verifier": verdict.verifier,
        "evidence_detail": verdict.detail,
        "evidence_sealed": keys.encrypt_secret(
            json.dumps(evidence, sort_keys=True), evidence_context(consent_id, version)
        ),
    }


def evidence_context(consent_id: str, version: int) -> str:
    # Binds the sealed evidence to its row: a blob moved to another consent won't open.
    return f"evi:consent-evidence:v1:{consent_id}:{version}"
