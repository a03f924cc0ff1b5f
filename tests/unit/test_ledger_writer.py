"""The one writer: gap-free sequence numbers, stored subtrees, concurrent writers."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from test_ledger_reference import ref_mth

from hub.ledger.event import Action, LedgerEvent
from hub.ledger.hashing import leaf_hash, root_from_frontier, split_frontier
from hub.ledger.tiles import TILE_WIDTH
from hub.ledger.tree import StoredTree
from hub.ledger.writer import append, append_many
from hub.store.db import Database
from hub.store.tables.ledger import LedgerEntryRow, LedgerHeadRow, LedgerTileRow


def event(n: int = 0) -> LedgerEvent:
    return LedgerEvent(action=Action.DECISION, decision="permit", actor=f"job:{n}")


def stored_leaves(db: Database) -> list[tuple[int, bytes, bytes]]:
    with db.session() as session:
        rows = session.execute(
            select(LedgerEntryRow.seq, LedgerEntryRow.leaf_hash, LedgerEntryRow.canonical).order_by(
                LedgerEntryRow.seq
            )
        ).all()
    return [(r.seq, r.leaf_hash, r.canonical) for r in rows]


def test_append_returns_consecutive_numbers_from_zero(database: Database) -> None:
    with database.session() as session:
        assert append(session, event()) == 0
        assert append(session, event()) == 1
    with database.session() as session:
        assert append_many(session, [event(i) for i in range(5)]) == range(2, 7)
        assert append_many(session, []) == range(0)
    assert [seq for seq, _, _ in stored_leaves(database)] == list(range(7))


def test_rolled_back_append_leaves_no_gap(database: Database) -> None:
    with database.session() as session:
        append(session, event())
    with pytest.raises(RuntimeError), database.session() as session:
        append(session, event())
        raise RuntimeError("the caller's work failed")
    with database.session() as session:
        assert append(session, event()) == 1


def test_leaf_hash_is_rfc9162_hash_of_stored_bytes_and_head_is_the_root(
    database: Database,
) -> None:
    with database.session() as session:
        append_many(session, [event(i) for i in range(13)])
    leaves = stored_leaves(database)
    assert all(digest == leaf_hash(data) for _, digest, data in leaves)
    with database.session() as session:
        head = session.get(LedgerHeadRow, 1)
        assert head is not None and head.size == 13
        frontier = split_frontier(head.frontier)
    assert root_from_frontier(frontier) == ref_mth([digest for _, digest, _ in leaves])


def test_every_complete_subtree_is_stored(database: Database) -> None:
    with database.session() as session:
        for i in range(11):  # one at a time, so each append extends the stored edge
            append(session, event(i))
    with database.session() as session:  # then batches that cross tile boundaries
        append_many(session, [event(i) for i in range(11, 40)])
        append_many(session, [event(i) for i in range(40, 291)])
    hashes = [digest for _, digest, _ in stored_leaves(database)]
    expected = {
        (level, index): ref_mth(hashes[index << level : (index + 1) << level])
        for level in range(0, 9)
        for index in range(len(hashes) >> level)
    }
    with database.session() as session:
        assert StoredTree(session).fetch(expected) == expected
        runs = session.execute(
            select(LedgerTileRow.level, LedgerTileRow.start, LedgerTileRow.hashes).order_by(
                LedgerTileRow.level, LedgerTileRow.start
            )
        ).all()
    # what is stored: levels 0, 4 and 8 (tile levels 0, 1, 2) exactly, never across a tile
    for tile_level in (0, 1, 2):
        level_runs = [(start, blob) for lv, start, blob in runs if lv == tile_level]
        assert b"".join(blob for _, blob in level_runs) == b"".join(
            expected[(4 * tile_level, i)] for i in range(len(hashes) >> (4 * tile_level))
        )
        for start, blob in level_runs:
            assert start // TILE_WIDTH == (start + len(blob) // 32 - 1) // TILE_WIDTH
    assert {lv for lv, _, _ in runs} == {0, 1, 2}


def test_concurrent_writers_get_gap_free_unique_numbers(database: Database) -> None:
    writers, per_writer = 6, 15
    results: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        try:
            for i in range(per_writer):
                with database.session() as session:
                    if i % 3 == 0:
                        got = list(append_many(session, [event(n), event(n)]))
                    else:
                        got = [append(session, event(n))]
                with lock:
                    results.extend(got)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    total = writers * (per_writer + per_writer // 3)
    assert sorted(results) == list(range(total))
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(LedgerEntryRow)) == total
        head = session.get(LedgerHeadRow, 1)
        assert head is not None
        frontier = split_frontier(head.frontier)
    leaves = [digest for _, digest, _ in stored_leaves(database)]
    assert root_from_frontier(frontier) == ref_mth(leaves)


def test_stored_time_reads_back_exactly_and_verifies(database: Database) -> None:
    from datetime import UTC, datetime

    from hub.ledger.verify import verify_ledger

    whole_second = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    with database.session() as session:
        append_many(
            session,
            [
                LedgerEvent(action=Action.VIEW, actor="a", time=whole_second),
                LedgerEvent(
                    action=Action.VIEW, actor="a", time=whole_second.replace(microsecond=7)
                ),
            ],
        )
    with database.session() as session:
        times = session.scalars(select(LedgerEntryRow.time).order_by(LedgerEntryRow.seq)).all()
        assert times == [whole_second, whole_second.replace(microsecond=7)]
        after = session.scalars(
            select(LedgerEntryRow.seq).where(LedgerEntryRow.time > whole_second)
        ).all()
        assert after == [1]
        assert verify_ledger(session, None).ok
        if database.dialect == "sqlite":  # the same text the ORM writes, so SQL compares work
            raw = session.connection().exec_driver_sql("SELECT time FROM ledger_entry").all()
            assert [r[0] for r in raw] == [
                "2025-03-01 12:00:00.000000",
                "2025-03-01 12:00:00.000007",
            ]


def test_sqlite_append_after_a_stale_read_fails_cleanly_without_a_gap(tmp_path) -> None:
    from hub.errors import StorageError

    database = Database(f"sqlite:///{tmp_path / 'stale.db'}")
    from hub.store.base import Base

    Base.metadata.create_all(database.engine)
    with database.session() as session:
        append(session, event())
    with pytest.raises(StorageError, match="read before appending"), database.session() as stale:
        stale.execute(select(LedgerEntryRow.seq)).all()  # a read: the snapshot is taken
        with database.session() as other:
            append(other, event())  # another writer commits seq 1
        append(stale, event())
    with database.session(write_lock=True) as session:
        session.execute(select(LedgerEntryRow.seq)).all()
        assert append(session, event()) == 2
    database.dispose()


TRICKY = ['quote " and \\ backslash', "tab\t newline\n \u2028 é 😀 \x1f \x7f", "", None]


def _appended_prepared(session: Session, events: list[LedgerEvent]) -> range:
    from hub.ledger.writer import append_prepared, prepare_entries

    prepared = prepare_entries(events)  # as the sync does, before the write transaction
    return append_prepared(session, prepared)


@pytest.mark.parametrize("append_events", [append_many, _appended_prepared])
def test_large_batches_are_written_in_chunks_with_the_columns_of_their_bytes(
    database: Database, monkeypatch: pytest.MonkeyPatch, append_events: Callable[..., range]
) -> None:
    """SQLite inserts a batch of more than writer.CHUNK entries chunk by chunk, each with one
    statement that reads the search columns out of the canonical bytes (the chunk whose bytes
    hold an escaped NUL, entries 8-14, takes the executemany path); every column equals the
    event's field. Entries encoded ahead (prepare_entries, then append_prepared) are stored
    the same way."""
    from datetime import UTC, datetime, timedelta

    from hub.ledger import writer
    from hub.ledger.verify import verify_ledger

    monkeypatch.setattr(writer, "CHUNK", 7)
    nul = "nul \u0000 inside" if database.dialect == "sqlite" else None  # not in PostgreSQL
    start = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    events = [
        LedgerEvent(
            action=Action.DELIVERY if i % 2 else Action.DECISION,
            decision=None if i % 2 else "deny",
            actor=f"job:{i} {TRICKY[i % 3]}",
            origin=TRICKY[i % 4],
            recipient="team",
            participant=f"p-{i:032x}",
            correlation_id=nul if i == 12 else TRICKY[(i + 1) % 4],
            time=start - timedelta(seconds=i, microseconds=i),
        )
        for i in range(30)
    ]
    with database.session() as session:
        assert append_events(session, events[:1]) == range(0, 1)
        assert append_events(session, events[1:]) == range(1, 30)
    with database.session() as session:
        rows = session.scalars(select(LedgerEntryRow).order_by(LedgerEntryRow.seq)).all()
        assert [row.seq for row in rows] == list(range(30))
        for row, ev in zip(rows, events, strict=True):
            assert row.leaf_hash == leaf_hash(row.canonical)
            assert (row.time, row.action, row.decision, row.outcome) == (
                ev.time,
                ev.action.value,
                ev.decision,
                ev.outcome.value,
            )
            assert (row.origin, row.recipient, row.actor) == (ev.origin, ev.recipient, ev.actor)
            assert (row.participant, row.correlation_id) == (ev.participant, ev.correlation_id)
        assert verify_ledger(session, None).ok


def test_a_batch_that_fails_part_way_leaves_nothing_behind(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.ledger import writer

    monkeypatch.setattr(writer, "CHUNK", 4)
    bad = [event(i) for i in range(10)] + [LedgerEvent(action=Action.VIEW, actor="\ud800")]
    with database.session() as session:
        with pytest.raises(ValueError, match="not valid Unicode"):
            append_many(session, bad)
        assert append_many(session, [event(1), event(2)]) == range(0, 2)
    assert [seq for seq, _, _ in stored_leaves(database)] == [0, 1]
