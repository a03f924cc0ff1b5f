"""A random sample of log entries for a privacy officer's review (stickprov).

Systematic log review (logguppföljning) checks a random selection of, say, the last
month's views of people by caseworkers rather than every one. :func:`sample` draws
``size`` entries uniformly at random from those a :class:`~hub.ledger.records.LedgerQuery`
matches, in one pass over their sequence numbers (reservoir sampling, so memory grows with
the sample, not the log), and returns them in sequence order.

The draw is reproducible: the same filters over the same entries and the same ``seed``
give the same sample, so a second reviewer can check that the sample was not picked by
hand. Give a closed period (``until``, already past when drawing): entries appended later
(this draw's own log entry among them) would otherwise change what a seed draws; the
:class:`Sample` says whether its period was closed. Without a seed one is chosen at random
and reported. Every draw is recorded in the log before the entries are shown
(``ledger_search``, reason ``sample …``), like any search.

Python's :class:`random.Random` draws (a reviewer's sample needs to be reproducible, not
unpredictable); the reservoir is Vitter's Algorithm R, a few lines no library is needed for.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from hub.context import Hub
from hub.errors import InputError
from hub.ledger.event import Action, LedgerEvent
from hub.ledger.records import EntryRecord, LedgerQuery, record_from_row
from hub.ledger.writer import append
from hub.store.tables.ledger import LedgerEntryRow

MAX_SAMPLE = 10_000
_SEQ_BATCH = 10_000


@dataclass(frozen=True)
class Sample:
    """The drawn entries (in sequence order), how many matched, and the seed that drew them;
    ``closed``: the period ended (``until``) before the draw, so no entry appended later
    can match and the same filters and seed draw the same entries again."""

    entries: list[EntryRecord]
    matching: int
    seed: int
    closed: bool = False


def sample(
    hub: Hub, query: LedgerQuery, size: int, actor: str, role: str, seed: int | None = None
) -> Sample:
    """Draw ``size`` of the entries ``query`` matches (all of them if fewer match)."""
    if not 1 <= size <= MAX_SAMPLE:
        raise InputError(f"the sample size is 1 to {MAX_SAMPLE}")
    if seed is None:
        seed = secrets.randbelow(2**32)
    elif not 0 <= seed < 2**63:
        raise InputError("the seed is a whole number from 0 to 2^63 - 1")
    hub.require_schema()
    closed = query.until is not None and query.until <= datetime.now(UTC)
    draw = random.Random(seed)
    chosen: list[int] = []
    matching = 0
    with hub.db.session() as session:  # reading only: syncs keep writing meanwhile
        stmt = query.where(select(LedgerEntryRow.seq)).order_by(LedgerEntryRow.seq)
        for seq in session.scalars(stmt.execution_options(yield_per=_SEQ_BATCH)):
            if matching < size:
                chosen.append(seq)
            else:
                slot = draw.randrange(matching + 1)
                if slot < size:
                    chosen[slot] = seq
            matching += 1
        rows = session.scalars(
            select(LedgerEntryRow)
            .where(LedgerEntryRow.seq.in_(chosen))
            .order_by(LedgerEntryRow.seq)
        ).all()
        entries = [record_from_row(row) for row in rows]
    reason = f"sample of {len(entries)} from {matching} matching, seed {seed}; "
    with hub.db.session(write_lock=True) as session:
        append(
            session,
            LedgerEvent(
                action=Action.LEDGER_SEARCH,
                actor=actor,
                role=role,
                reason=reason + query.describe(),
                participant=query.participant,
            ),
        )
    return Sample(entries, matching, seed, closed)
