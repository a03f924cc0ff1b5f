"""Searches and purges by participant or time find every match, in order, across blocks.

The participant and time indexes are per block of 2^BLOCK_BITS entries, so these searches
walk the blocks; here entries sit in many blocks (rows written directly at spread-out
sequence numbers: the search does not need a gap-free log) and every answer is compared
with a plain filter over all of them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from hub.ledger import records
from hub.ledger.canonical import canonical_bytes
from hub.ledger.event import Action, LedgerEvent
from hub.ledger.hashing import leaf_hash
from hub.ledger.purge import count_purgeable, purge_before
from hub.ledger.records import LedgerQuery, find_entries
from hub.store.db import Database
from hub.store.tables.ledger import BLOCK_BITS, LedgerEntryRow

T0 = datetime(2025, 1, 1, tzinfo=UTC)
BLOCKS = 40
RARE = "p-" + "a" * 32


def person(j: int) -> str:
    return f"p-{j:032x}"


def spread(database: Database) -> dict[int, LedgerEvent]:
    """Five entries in each of 40 blocks; times out of sequence order."""
    events: dict[int, LedgerEvent] = {}
    for block in range(BLOCKS):
        for j in range(5):
            seq = (block << BLOCK_BITS) + j
            rare = (block % 7 == 0 and j == 1) or (block == BLOCKS - 1 and j == 4)
            events[seq] = LedgerEvent(
                action=Action.DECISION,
                decision="permit",
                actor="job:sync",
                participant=RARE if rare else person(j),
                time=T0 + timedelta(minutes=(block * 37 + j * 11) % 97),
            )
    rows = []
    for seq, ev in events.items():
        data = canonical_bytes(ev)
        rows.append(
            {
                "seq": seq,
                "time": ev.time,
                "action": ev.action.value,
                "decision": ev.decision,
                "outcome": ev.outcome.value,
                "actor": ev.actor,
                "participant": ev.participant,
                "leaf_hash": leaf_hash(data),
                "canonical": data,
            }
        )
    with database.session() as session:
        session.execute(insert(LedgerEntryRow), rows)
    return events


def matches(query: LedgerQuery, ev: LedgerEvent) -> bool:
    return (
        (query.participant is None or ev.participant == query.participant)
        and (query.since is None or ev.time >= query.since)
        and (query.until is None or ev.time < query.until)
    )


@pytest.mark.parametrize(
    "query",
    [
        LedgerQuery(participant=RARE),
        LedgerQuery(participant=RARE, limit=3),
        LedgerQuery(participant=person(2)),
        LedgerQuery(participant=person(2), limit=7),
        LedgerQuery(participant="p-" + "f" * 32),
        LedgerQuery(since=T0 + timedelta(minutes=90)),
        LedgerQuery(since=T0 + timedelta(minutes=20), until=T0 + timedelta(minutes=23)),
        LedgerQuery(until=T0 + timedelta(minutes=50), limit=11),
        LedgerQuery(participant=person(3), since=T0 + timedelta(minutes=40)),
    ],
    ids=repr,
)
def test_search_finds_every_match_in_order_across_blocks(
    database: Database, monkeypatch: pytest.MonkeyPatch, query: LedgerQuery
) -> None:
    events = spread(database)
    monkeypatch.setattr(records, "_BATCH", 4)  # many pages, and pages ending mid-block
    expected = [seq for seq in sorted(events) if matches(query, events[seq])][: query.limit]
    with database.session() as session:
        assert [r.seq for r in find_entries(session, query)] == expected


def test_purge_clears_every_older_entry_across_blocks(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = spread(database)
    monkeypatch.setattr(records, "_MAX_SPAN", 3)  # several statements
    before = T0 + timedelta(minutes=30)
    older = {seq for seq, ev in events.items() if ev.time < before}
    with database.session() as session:
        assert count_purgeable(session, before) == len(older)
        assert purge_before(session, before, T0) == len(older)
    with database.session() as session:
        purged = session.scalars(
            select(LedgerEntryRow.seq).where(LedgerEntryRow.canonical.is_(None))
        ).all()
        assert set(purged) == older
        assert count_purgeable(session, before) == 0
