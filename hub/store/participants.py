"""Participant repository: find or add a person by identity number. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.keys import KeyRing
from hub.model.identity import PersonalIdentity, parse_identity
from hub.store.tables.participant import ParticipantRow

# Bound parameters per IN (...) list: well under SQLite's and PostgreSQL's limits.
_CHUNK = 500


class ParticipantColumns(NamedTuple):
    """A participant as plain columns: what deciding about, logging and naming them needs.

    Read where thousands of people are handled at once (the nightly subscription check of
    every connector), where building a :class:`ParticipantRow` per person costs more than
    the decisions themselves.
    """

    id: int
    pseudonym: str
    protected_identity: bool
    consent_revision: int
    pnr_ciphertext: bytes


def participant_columns(session: Session, ids: Sequence[int]) -> list[ParticipantColumns]:
    """The participants with these ids, in the order the database returns each chunk."""
    p = ParticipantRow
    found: list[ParticipantColumns] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        rows = session.execute(
            select(
                p.id, p.pseudonym, p.protected_identity, p.consent_revision, p.pnr_ciphertext
            ).where(p.id.in_(chunk))
        )
        found.extend(ParticipantColumns._make(row) for row in rows)
    return found


class ParticipantRepository:
    def __init__(self, session: Session, keys: KeyRing) -> None:
        self.session = session
        self.keys = keys

    def find(self, identity: PersonalIdentity) -> ParticipantRow | None:
        digest = self.keys.lookup_digest(identity.number)
        return self.session.scalars(
            select(ParticipantRow).where(ParticipantRow.pnr_lookup == digest)
        ).one_or_none()

    def find_by_pseudonym(self, pseudonym: str) -> ParticipantRow | None:
        return self.session.scalars(
            select(ParticipantRow).where(ParticipantRow.pseudonym == pseudonym)
        ).one_or_none()

    def ensure(
        self, identity: PersonalIdentity, *, protected_identity: bool | None = None
    ) -> ParticipantRow:
        """Return the participant with this number, adding them if new.

        ``protected_identity`` updates the flag when given (skyddad identitet can be
        set or lifted by the authority that knows it).
        """
        row = self.find(identity)
        if row is None:
            row = ParticipantRow(
                pseudonym=self.keys.pseudonym(identity.number),
                pnr_lookup=self.keys.lookup_digest(identity.number),
                pnr_ciphertext=self.keys.encrypt_number(identity.number),
                coordination_number=identity.is_coordination_number,
                gender=identity.gender,
                birth_year=identity.birth_year,
                protected_identity=bool(protected_identity),
                created_at=datetime.now(UTC),
            )
            self.session.add(row)
            self.session.flush()
        elif protected_identity is not None:
            row.protected_identity = protected_identity
        return row

    def identity_of(self, row: ParticipantRow | ParticipantColumns) -> PersonalIdentity:
        return parse_identity(self.keys.decrypt_number(row.pnr_ciphertext))
