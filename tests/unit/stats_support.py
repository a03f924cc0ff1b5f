"""Helpers for the follow-up statistics tests: a hand-built caseload on a real database.

Only Skatteverket's official test numbers are used, split by the gender digit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from record_support import add_record
from sqlalchemy import select
from test_consent_support import Clock, paper_submission, skatteverket_numbers

from hub.casework.summary import CaseSummary, StatusEntry, summarise
from hub.consent.service import ConsentService
from hub.context import Hub
from hub.model.domain import Closure, Referral
from hub.model.identity import parse_identity
from hub.store.participants import ParticipantRepository
from hub.store.tables.participant import ParticipantRow
from hub.store.tables.sync import StoredRecord

AT = datetime(2025, 8, 1, 12, tzinfo=UTC)
"""When the tests ask the gate: inside the consents' validity."""

_NUMBERS = skatteverket_numbers(120)
WOMEN = [n for n in _NUMBERS if int(n[-2]) % 2 == 0]
MEN = [n for n in _NUMBERS if int(n[-2]) % 2 == 1]
EVALUATION = ("coordination", "evaluation")


class Caseload:
    """People, their consents and their stored referrals and closures."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.service = ConsentService(hub, clock=Clock())
        self._records = 0

    def consent(
        self,
        number: str,
        *,
        purposes: Sequence[str] = EVALUATION,
        parties: Sequence[str] = ("kommun", "af", "team"),
        categories: Sequence[str] = ("referral", "outcome"),
    ) -> None:
        self.service.register(
            paper_submission(
                number,
                parties=list(parties),
                categories=list(categories),
                purposes=list(purposes),
                valid_until="2099-01-01T00:00:00Z",
            ),
            actor="test",
        )

    def referral(
        self,
        number: str,
        on: str,
        *,
        origin: str = "kommun",
        restricted: bool = False,
        updated: datetime | None = None,
    ) -> None:
        body = Referral(
            referring_party=origin, received_on=date.fromisoformat(on), reason="financial_aid"
        )
        self._store(number, origin, "referral", body.model_dump(mode="json"), restricted, updated)

    def closure(
        self,
        number: str,
        on: str,
        *,
        origin: str = "kommun",
        outcome: str = "work",
        reason: str = "goal_reached",
        updated: datetime | None = None,
    ) -> None:
        body = Closure.model_validate(
            {"closed_on": on, "outcome": outcome, "reason": reason}
        ).model_dump(mode="json")
        self._store(number, origin, "closure", body, False, updated)

    def summary(self, number: str) -> CaseSummary:
        """The caseworker's summary of every record stored about the person."""
        with self.hub.db.session() as session:
            person = ParticipantRepository(session, self.hub.keys).ensure(parse_identity(number))
            rows = session.scalars(
                select(StoredRecord).where(StoredRecord.participant_id == person.id)
            )
            entries = [StatusEntry.of(r) for r in rows]
        return summarise(entries, AT.date())

    def participant(self, number: str) -> ParticipantRow:
        with self.hub.db.session() as session:
            return ParticipantRepository(session, self.hub.keys).ensure(parse_identity(number))

    def _store(
        self,
        number: str,
        origin: str,
        kind: str,
        body: dict[str, Any],
        restricted: bool,
        updated: datetime | None,
    ) -> None:
        """Store one record; ``updated`` is its update time (default 2025-07-01)."""
        self._records += 1
        now = updated or datetime(2025, 7, 1, tzinfo=UTC)
        category = "referral" if kind == "referral" else "outcome"
        with self.hub.db.session() as session:
            person = ParticipantRepository(session, self.hub.keys).ensure(parse_identity(number))
            add_record(
                session,
                person.id,
                origin=origin,
                source_id=f"stats-test-{self._records}",
                kind=kind,
                category=category,
                body=body,
                at=now,
                restricted=restricted,
            )


def small_caseload(hub: Hub) -> Caseload:
    """Six women referred in 2025-04-01..06-30, three men closed in it (asked about now:
    the consents run until 2099)."""
    people = Caseload(hub)
    for woman in WOMEN[:6]:
        people.consent(woman)
        people.referral(woman, "2025-05-02")
    for man in MEN[:3]:
        people.consent(man)
        people.referral(man, "2025-01-10")
        people.closure(man, "2025-06-30", outcome="work_with_subsidy", reason="goal_reached")
    return people
