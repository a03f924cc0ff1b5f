"""Read the records follow-up statistics need: referrals and closures, in one query.

Only the columns the measures and the gate need are read (dates, outcome and reason
codes, origin, category, the restricted mark and the payload digest), never whole bodies.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from hub.store.tables.sync import StoredRecord

REFERRAL: Final = "referral"
CLOSURE: Final = "closure"

Kind = Literal["referral", "closure"]


@dataclass(frozen=True, slots=True)
class Fact:
    """One stored referral or closure, reduced to what the statistics use.

    ``on`` is the referral's ``received_on`` or the closure's ``closed_on``; ``outcome``
    and ``reason`` are the closure's codes (``None`` for a referral).
    """

    origin: str
    category: str
    restricted: bool
    payload_sha256: str
    kind: Kind
    on: date
    outcome: str | None = None
    reason: str | None = None

    @property
    def gate_key(self) -> tuple[str, str, bool]:
        """What one gate decision covers: origin, category and the restricted mark."""
        return (self.origin, self.category, self.restricted)


def facts_until(session: Session, period_end: date) -> dict[int, list[Fact]]:
    """Every stored referral received and closure closed on or before ``period_end``, by
    participant id. Later records cannot change a period's figures, so they are not read.
    """
    r = StoredRecord
    end = period_end.isoformat()  # ISO dates compare as text, in SQLite and PostgreSQL
    received = r.body["received_on"].as_string()
    closed = r.body["closed_on"].as_string()
    rows = session.execute(
        select(
            r.participant_id,
            r.source,
            r.category,
            r.restricted,
            r.payload_sha256,
            r.kind,
            received,
            closed,
            r.body["outcome"].as_string(),
            r.body["reason"].as_string(),
        )
        .where(
            or_(
                and_(r.kind == REFERRAL, received <= end),
                and_(r.kind == CLOSURE, closed <= end),
            )
        )
        .order_by(r.participant_id, r.id)
    )
    facts: dict[int, list[Fact]] = defaultdict(list)
    for pid, origin, category, restricted, digest, kind, rec_on, closed_on, outcome, why in rows:
        if kind == REFERRAL:
            fact = Fact(origin, category, bool(restricted), digest, REFERRAL, _day(rec_on))
        else:
            fact = Fact(
                origin, category, bool(restricted), digest, CLOSURE, _day(closed_on), outcome, why
            )
        facts[pid].append(fact)
    return dict(facts)


def _day(text: str) -> date:
    return date.fromisoformat(text)
