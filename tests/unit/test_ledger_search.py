"""Searches and purges by participant or time find every match, in order, across blocks.

The participant and time indexes are per block of 2^BLOCK_BITS entries, so these searches
walk the blocks; here entries sit in many blocks (rows written directly at spread-out
sequence numbers: the search does not need a gap-free log) and every answer is compared
with a plain filter over all of them, oldest first and newest first, whole and in pages.
Each statement of such a search bounds the sequence numbers to the blocks it asks about.

The search use case (:func:`hub.ledger.service.search`) records itself before it reads,
then reads without holding the write lock, and answers the log as it stood when the
search was recorded.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ledger_support import decisions
from sqlalchemy import event, insert, select, text

from hub.context import Hub
from hub.errors import InputError
from hub.ledger import records, service
from hub.ledger.canonical import canonical_bytes, event_document
from hub.ledger.event import Action, LedgerEvent
from hub.ledger.hashing import leaf_hash
from hub.ledger.purge import count_purgeable, purge_before
from hub.ledger.records import LedgerQuery, find_entries
from hub.ledger.writer import append
from hub.store.db import Database
from hub.store.tables.ledger import BLOCK_BITS, LedgerEntryRow
from tests.conftest import DATA

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


QUERIES = [
    LedgerQuery(participant=RARE, limit=3),
    LedgerQuery(participant=person(2), limit=7),
    LedgerQuery(participant="p-" + "f" * 32, limit=5),
    LedgerQuery(since=T0 + timedelta(minutes=90), limit=4),
    LedgerQuery(since=T0 + timedelta(minutes=20), until=T0 + timedelta(minutes=23), limit=2),
    LedgerQuery(participant=person(3), since=T0 + timedelta(minutes=40), limit=6),
    LedgerQuery(decision="permit", limit=9),  # no index of its own: read in sequence order
]


@pytest.mark.parametrize("query", QUERIES, ids=repr)
def test_newest_first_finds_the_newest_matches_in_reverse_order(
    database: Database, monkeypatch: pytest.MonkeyPatch, query: LedgerQuery
) -> None:
    events = spread(database)
    monkeypatch.setattr(records, "_BATCH", 4)
    newest = replace(query, newest_first=True)
    every = [seq for seq in sorted(events, reverse=True) if matches(query, events[seq])]
    with database.session() as session:
        assert [r.seq for r in find_entries(session, newest)] == every[: query.limit]


@pytest.mark.parametrize("query", QUERIES, ids=repr)
def test_pages_by_sequence_number_hold_every_match_exactly_once(
    database: Database, monkeypatch: pytest.MonkeyPatch, query: LedgerQuery
) -> None:
    events = spread(database)
    monkeypatch.setattr(records, "_BATCH", 4)
    every = [seq for seq in sorted(events) if matches(query, events[seq])]
    older: list[int] = []  # newest first, each page before the oldest entry of the last
    newer: list[int] = []  # oldest first, each page after the newest entry of the last
    with database.session() as session:
        before: int | None = None
        while page := [
            r.seq for r in find_entries(session, replace(query, newest_first=True, before=before))
        ]:
            older += page
            before = page[-1]
        after: int | None = None
        while page := [r.seq for r in find_entries(session, replace(query, after=after))]:
            newer += page
            after = page[-1]
    assert older == every[::-1]
    assert newer == every


def test_a_search_between_sequence_numbers_finds_only_those_between(database: Database) -> None:
    events = spread(database)
    low, high = (3 << BLOCK_BITS) + 2, (30 << BLOCK_BITS) + 1
    query = LedgerQuery(participant=person(2), after=low, before=high)
    expected = [s for s in sorted(events) if low < s < high and matches(query, events[s])]
    with database.session() as session:
        assert [r.seq for r in find_entries(session, query)] == expected
        newest = replace(query, newest_first=True)
        assert [r.seq for r in find_entries(session, newest)] == expected[::-1]


@pytest.mark.parametrize("newest_first", [False, True])
@pytest.mark.parametrize(
    "query",
    [
        LedgerQuery(since=T0 + timedelta(minutes=95)),
        LedgerQuery(since=T0 + timedelta(minutes=20), until=T0 + timedelta(minutes=23)),
        LedgerQuery(participant=RARE, limit=3),
    ],
    ids=repr,
)
def test_each_block_search_bounds_the_sequence_numbers_to_its_blocks(
    database: Database, query: LedgerQuery, newest_first: bool
) -> None:
    # The per-block indexes only help if the database cannot instead walk the primary
    # key from the first block asked to the end of the log (PostgreSQL did, for a recent
    # time window: 7 s over 9 queries at 4M entries; SQLite did once ANALYZEd). So each
    # statement bounds seq to its blocks on both sides, and orders by block first.
    events = spread(database)
    statements: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "seq_block IN" in statement:
            statements.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", grab)
    if newest_first:
        query = replace(query, newest_first=True)
    with database.session() as session:
        found = [r.seq for r in find_entries(session, query)]
    event.remove(database.engine, "before_cursor_execute", grab)
    every = [seq for seq in sorted(events, reverse=newest_first) if matches(query, events[seq])]
    assert found == every[: query.limit]
    assert len(statements) >= 3  # one block, then two, then four …
    for statement, parameters in statements:
        flat = " ".join(statement.split())
        assert re.search(r"ledger_entry\.seq\)? >= ", flat), flat
        assert re.search(r"ledger_entry\.seq\)? < ", flat), flat
        assert "ORDER BY ledger_entry.seq_block" in flat, flat
        if database.dialect == "sqlite":  # the same plan without and with statistics
            with database.engine.connect() as conn:
                for analyzed in (False, True):
                    if analyzed:
                        conn.execute(text("ANALYZE"))
                    plan = " ".join(
                        str(row[-1])
                        for row in conn.exec_driver_sql(
                            f"EXPLAIN QUERY PLAN {statement}", parameters
                        )
                    )
                    assert "PRIMARY KEY" not in plan and "ix_ledger_entry_block_" in plan, plan


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


# -- the search use case: recorded first, then read without the write lock ---------------

PNR = (DATA / "skatteverket_testpersonnummer.csv").read_text().split()[1]


def _append_elsewhere(hub: Hub) -> str:
    """Append an entry over a connection of its own, waiting at most 0.2 s for SQLite's
    write lock; what happened."""
    other = Database(hub.db.url)
    try:
        with other.session() as session:
            if other.dialect == "sqlite":
                session.execute(text("PRAGMA busy_timeout = 200"))
            append(session, LedgerEvent(action=Action.VIEW, actor="anna.af", role="caseworker"))
        return "appended"
    except Exception as exc:  # what went wrong is the answer
        return f"{type(exc).__name__}: {exc}"
    finally:
        other.dispose()


def test_a_search_reads_without_the_write_lock_and_answers_the_log_as_it_stood(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    decisions(hub, PNR, 3)
    meanwhile: list[str] = []
    read = records.record_from_row

    def reading(row: LedgerEntryRow) -> Any:
        if not meanwhile:  # the search is reading: another writer appends
            meanwhile.append(_append_elsewhere(hub))
        return read(row)

    monkeypatch.setattr(records, "record_from_row", reading)
    found = service.search(hub, LedgerQuery(limit=10), "cli:someone")
    assert [r.seq for r in found] == [0, 1, 2]  # not its own entry (3), nor the one after
    assert meanwhile == ["appended"]
    with hub.db.session() as session:
        after = [(r.seq, r.action) for r in find_entries(session, LedgerQuery(after=2))]
    assert after == [(3, "ledger_search"), (4, "view")]


def test_a_search_is_recorded_as_it_always_was(hub: Hub) -> None:
    decisions(hub, PNR, 3)
    pseudonym = hub.keys.pseudonym(PNR)
    query = LedgerQuery(participant=pseudonym, party="af", limit=10)
    found = service.search(hub, query, "cli:someone", role="log-reviewer")
    assert [r.seq for r in found] == [0, 1, 2]
    with hub.db.session() as session:
        [entry] = find_entries(session, LedgerQuery(action=Action.LEDGER_SEARCH))
    assert entry.seq == 3 and entry.document is not None
    expected = event_document(
        LedgerEvent(
            action=Action.LEDGER_SEARCH,
            actor="cli:someone",
            role="log-reviewer",
            reason=f"filters: participant={pseudonym}, party=af, limit=10",
            participant=pseudonym,
        ),
        b"",
    )
    mine = {k: v for k, v in entry.document.items() if k not in ("time", "salt")}
    assert mine == {k: v for k, v in expected.items() if k not in ("time", "salt")}


def test_a_search_for_more_than_the_most_is_refused_and_not_recorded(hub: Hub) -> None:
    decisions(hub, PNR, 3)
    for limit in (None, 0, service.MAX_SEARCH + 1):
        with pytest.raises(InputError, match="evi log export"):
            service.search(hub, LedgerQuery(limit=limit), "cli:someone")
    with hub.db.session() as session:
        assert list(find_entries(session, LedgerQuery(action=Action.LEDGER_SEARCH))) == []
