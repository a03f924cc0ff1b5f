"""Consent repository: read and add consents, versions, withdrawals and blocks. Never commits.

Rows are only ever added (consents are immutable and versioned); the single update is
:meth:`ConsentRepository.lift_block`. Every write also bumps the person's
``participant.consent_revision`` (:meth:`ConsentRepository.touch`), which caches of gate
snapshots compare.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Text, cast, func, select, update
from sqlalchemy.orm import Session

from hub.store.tables.consent import (
    ConsentBlockRow,
    ConsentPartyRow,
    ConsentRow,
    ConsentVersionRow,
    ConsentWithdrawalRow,
)
from hub.store.tables.participant import ParticipantRow

T = TypeVar("T")

# Bound parameters per IN (...) list: well under SQLite's and PostgreSQL's limits.
_CHUNK = 500


def _chunks(values: Sequence[T]) -> Iterable[list[T]]:
    for start in range(0, len(values), _CHUNK):
        yield list(values[start : start + _CHUNK])


@dataclass
class GateRows:
    """Raw rows for gate snapshots (see :meth:`ConsentRepository.gate_rows`)."""

    versions: list[tuple[Any, ...]]
    parties: dict[int, list[str]]
    withdrawals: list[tuple[Any, ...]]
    blocks: list[tuple[Any, ...]]


class ConsentRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- consents and versions --------------------------------------------------------------

    def get(self, consent_id: str, *, lock: bool = False) -> ConsentRow | None:
        """The consent; ``lock=True`` holds its row until the transaction ends (PostgreSQL
        ``FOR UPDATE``; SQLite's write lock already serialises writers), so two amendments
        cannot both become the next version."""
        return self.session.get(ConsentRow, consent_id, with_for_update=lock)

    def consents_of(self, participant_id: int) -> list[ConsentRow]:
        """The person's consents, oldest first, each with its versions loaded."""
        return list(
            self.session.scalars(
                select(ConsentRow)
                .where(ConsentRow.participant_id == participant_id)
                .order_by(ConsentRow.created_at, ConsentRow.id)
            )
        )

    def gate_rows(self, participant_ids: Sequence[int]) -> GateRows:
        """Just the columns the gate needs for these participants, without ORM objects.

        The hot path of every sync batch, the nightly reconcile of everyone and every
        statistics view: column-level statements run on the connection (SQLAlchemy
        Core; the ORM's row handling was a tenth of the time), no evidence loaded. A
        version's categories and purposes are read as their JSON text and decoded once
        per distinct text into a shared frozenset: a city's 120,000 versions hold a
        handful of different lists, and decoding each was a fifth of the time.
        """
        v, c, p = ConsentVersionRow, ConsentRow, ConsentPartyRow
        w, b = ConsentWithdrawalRow, ConsentBlockRow
        if self.session.autoflush:  # what the ORM's own execute does first
            self.session.flush()
        run = self.session.connection().execute
        decoded: dict[str, frozenset[str]] = {}

        def codes(text: str) -> frozenset[str]:
            found = decoded.get(text)
            if found is None:
                found = decoded[text] = frozenset(json.loads(text))
            return found

        rows = GateRows([], {}, [], [])
        for chunk in _chunks(participant_ids):
            versions = run(
                select(
                    c.participant_id,
                    c.id,
                    v.id,
                    v.version,
                    cast(v.categories, Text),
                    cast(v.purposes, Text),
                    v.valid_from,
                    v.valid_until,
                    v.recorded_at,
                )
                .join(v, v.consent_id == c.id)
                .where(c.participant_id.in_(chunk))
            ).all()
            rows.versions.extend(
                (pid, cid, vid, number, codes(cats), codes(purposes), start, until, recorded)
                for pid, cid, vid, number, cats, purposes, start, until, recorded in versions
            )
            version_ids = [row[2] for row in versions]
            for start in range(0, len(version_ids), 500):
                for version_id, party in run(
                    select(p.version_id, p.party).where(
                        p.version_id.in_(version_ids[start : start + 500])
                    )
                ).all():
                    rows.parties.setdefault(version_id, []).append(party)
            rows.withdrawals.extend(
                tuple(row)
                for row in run(
                    select(
                        c.participant_id, w.consent_id, w.up_to_version, w.at, w.party, w.category
                    )
                    .join(c, c.id == w.consent_id)
                    .where(c.participant_id.in_(chunk))
                ).all()
            )
            rows.blocks.extend(
                tuple(row)
                for row in run(
                    select(
                        b.participant_id,
                        b.id,
                        b.valid_from,
                        b.valid_until,
                        b.lifted_at,
                        b.party,
                        b.category,
                    ).where(b.participant_id.in_(chunk))
                ).all()
            )
        return rows

    def touch(self, participant_ids: Iterable[int]) -> None:
        """Count a change to these people's consents (``participant.consent_revision``).

        Every write below calls it, in the same transaction as the change, so a cached gate
        snapshot whose revision still matches the stored one is the stored snapshot.
        """
        ids = sorted(set(participant_ids))
        for chunk in _chunks(ids):
            self.session.execute(
                update(ParticipantRow)
                .where(ParticipantRow.id.in_(chunk))
                .values(consent_revision=ParticipantRow.consent_revision + 1)
                .execution_options(synchronize_session=False)
            )

    def _touch_consent(self, consent_id: str) -> None:
        participant_id = self.session.scalar(
            select(ConsentRow.participant_id).where(ConsentRow.id == consent_id)
        )
        if participant_id is not None:
            self.touch([participant_id])

    def all_consents(self) -> list[ConsentRow]:
        return list(
            self.session.scalars(select(ConsentRow).order_by(ConsentRow.created_at, ConsentRow.id))
        )

    def create_consent(self, participant_id: int, created_at: datetime) -> ConsentRow:
        row = ConsentRow(id=str(uuid.uuid4()), participant_id=participant_id, created_at=created_at)
        self.session.add(row)
        return row

    def latest_version_number(self, consent_id: str) -> int:
        number = self.session.scalar(
            select(func.max(ConsentVersionRow.version)).where(
                ConsentVersionRow.consent_id == consent_id
            )
        )
        return int(number or 0)

    def add_version(self, row: ConsentVersionRow, parties: Iterable[str]) -> ConsentVersionRow:
        """Insert a version and the parties it names (flushes to obtain the row id)."""
        self.session.add(row)
        self.session.flush()
        for party in sorted(set(parties)):
            self.session.add(ConsentPartyRow(version_id=row.id, party=party))
        self.session.flush()
        self.session.expire(row, ["party_rows"])
        self._touch_consent(row.consent_id)
        return row

    def participants_naming(self, party: str, at: datetime) -> list[int]:
        """Participants with a version naming ``party`` whose period contains ``at``.

        A cheap pre-filter: supersession, withdrawals and blocks are judged by the gate's
        snapshot afterwards.
        """
        stmt = (
            select(ConsentRow.participant_id)
            .join(ConsentVersionRow, ConsentVersionRow.consent_id == ConsentRow.id)
            .join(ConsentPartyRow, ConsentPartyRow.version_id == ConsentVersionRow.id)
            .where(
                ConsentPartyRow.party == party,
                ConsentVersionRow.valid_from <= at,
                ConsentVersionRow.valid_until > at,
            )
            .distinct()
        )
        return sorted(self.session.scalars(stmt))

    # -- withdrawals --------------------------------------------------------------------------

    def withdrawals_of(self, consent_ids: Sequence[str]) -> list[ConsentWithdrawalRow]:
        rows: list[ConsentWithdrawalRow] = []
        for chunk in _chunks(consent_ids):
            rows.extend(
                self.session.scalars(
                    select(ConsentWithdrawalRow)
                    .where(ConsentWithdrawalRow.consent_id.in_(chunk))
                    .order_by(ConsentWithdrawalRow.at, ConsentWithdrawalRow.id)
                )
            )
        return rows

    def add_withdrawal(
        self,
        consent_id: str,
        up_to_version: int,
        at: datetime,
        recorded_by: str,
        *,
        party: str | None = None,
        category: str | None = None,
    ) -> ConsentWithdrawalRow:
        row = ConsentWithdrawalRow(
            id=str(uuid.uuid4()),
            consent_id=consent_id,
            up_to_version=up_to_version,
            party=party,
            category=category,
            at=at,
            recorded_by=recorded_by,
        )
        self.session.add(row)
        self._touch_consent(consent_id)
        return row

    # -- blocks -------------------------------------------------------------------------------

    def blocks_of(self, participant_id: int) -> list[ConsentBlockRow]:
        return self.blocks_of_many([participant_id])

    def blocks_of_many(self, participant_ids: Sequence[int]) -> list[ConsentBlockRow]:
        rows: list[ConsentBlockRow] = []
        for chunk in _chunks(participant_ids):
            rows.extend(
                self.session.scalars(
                    select(ConsentBlockRow)
                    .where(ConsentBlockRow.participant_id.in_(chunk))
                    .order_by(ConsentBlockRow.recorded_at, ConsentBlockRow.id)
                )
            )
        return rows

    def get_block(self, block_id: str) -> ConsentBlockRow | None:
        return self.session.get(ConsentBlockRow, block_id)

    def add_block(
        self,
        participant_id: int,
        valid_from: datetime,
        recorded_by: str,
        *,
        party: str | None = None,
        category: str | None = None,
        valid_until: datetime | None = None,
    ) -> ConsentBlockRow:
        row = ConsentBlockRow(
            id=str(uuid.uuid4()),
            participant_id=participant_id,
            party=party,
            category=category,
            valid_from=valid_from,
            valid_until=valid_until,
            recorded_at=valid_from,
            recorded_by=recorded_by,
        )
        self.session.add(row)
        self.touch([participant_id])
        return row

    def lift_block(self, row: ConsentBlockRow, at: datetime, lifted_by: str) -> None:
        row.lifted_at = at
        row.lifted_by = lifted_by
        self.touch([row.participant_id])
