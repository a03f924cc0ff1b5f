"""`evi log verify`: any change to a stored entry or checkpoint is found and named."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from hub.context import Hub
from hub.ledger.canonical import canonical_bytes
from hub.ledger.checkpoint import write_checkpoint
from hub.ledger.event import Action, LedgerEvent
from hub.ledger.hashing import leaf_hash, node_hash, root_from_frontier
from hub.ledger.service import verifier, verify
from hub.ledger.tiles import TILE_HEIGHT, TILE_WIDTH
from hub.ledger.verify import verify_ledger
from hub.ledger.witness import read_witness_directory, witness_directory
from hub.ledger.writer import append_many
from hub.plugins import get_plugin_manager
from hub.settings import get_settings
from hub.store.tables.ledger import (
    LedgerCheckpointRow,
    LedgerEntryRow,
    LedgerHeadRow,
    LedgerTileRow,
)

SIZE = 40


def event(i: int) -> LedgerEvent:
    return LedgerEvent(
        action=Action.DECISION,
        decision="permit" if i % 3 else "deny",
        actor="job:sync",
        origin="af",
        recipient="team",
        categories=("plan",),
        purpose="coordination",
        participant=f"p-{i:032x}",
    )


@pytest.fixture
def ledger(hub: Hub) -> Hub:
    """40 entries, checkpoints at sizes 16 and 40."""
    pm = get_plugin_manager()
    with hub.db.session() as session:
        append_many(session, [event(i) for i in range(16)])
        write_checkpoint(session, hub.settings, pm)
    with hub.db.session() as session:
        append_many(session, [event(i) for i in range(16, SIZE)])
        write_checkpoint(session, hub.settings, pm)
    return hub


def tamper(hub: Hub, change: Callable[[Session], object]) -> None:
    with hub.db.session() as session:
        change(session)


def entry(session: Session, seq: int) -> LedgerEntryRow:
    row = session.get(LedgerEntryRow, seq)
    assert row is not None
    return row


def forge(row: LedgerEntryRow, ev: LedgerEvent) -> None:
    """Rewrite an entry the way a careful attacker would: bytes, leaf hash and columns."""
    row.canonical = canonical_bytes(ev)
    row.leaf_hash = leaf_hash(row.canonical)
    row.time, row.action, row.decision = ev.time, ev.action.value, ev.decision
    row.outcome, row.origin, row.recipient = ev.outcome.value, ev.origin, ev.recipient
    row.actor, row.participant, row.correlation_id = ev.actor, ev.participant, ev.correlation_id


def first_bad(hub: Hub) -> tuple[int | None, str]:
    """The first problem `evi log verify` names; the same with tiny verification blocks,
    so the block-by-block path (block roots, the tree above them) is exercised too."""
    report = verify(hub)
    assert not report.ok
    problem = report.first_problem
    assert problem is not None
    for block_level in (1, 2, 3):
        with hub.db.session() as session:
            witnesses = read_witness_directory(witness_directory(hub.settings))
            small = verify_ledger(session, verifier(hub), witnesses, block_level=block_level)
        assert small.first_problem == problem, block_level
    return problem.seq, problem.what


def test_an_untouched_ledger_verifies(ledger: Hub, cli) -> None:
    report = verify(ledger)
    assert report.ok, report.problems
    for block_level in (1, 2, 3, 5):
        with ledger.db.session() as session:
            assert verify_ledger(session, verifier(ledger), block_level=block_level).ok
    assert (report.size, report.checkpoints) == (SIZE, 2)
    result = cli("log", "verify")
    assert result.code == 0, result.err
    assert "entries: 40, checkpoints: 2" in result.out


def test_changed_entry_bytes_are_named(ledger: Hub, cli) -> None:
    def change(session: Session) -> None:
        row = entry(session, 17)
        assert row.canonical is not None
        row.canonical = row.canonical.replace(b'"af"', b'"fk"')

    tamper(ledger, change)
    assert first_bad(ledger) == (17, "its stored bytes do not give its leaf hash (entry altered)")
    result = cli("log", "verify")
    assert result.code == 4
    assert "error: the ledger does not verify: entry 17:" in result.err


def test_entry_rewritten_with_its_leaf_hash_is_named(ledger: Hub) -> None:
    tamper(ledger, lambda s: forge(entry(s, 17), event(99)))
    seq, what = first_bad(ledger)
    assert seq == 17 and "stored tree hash over entry 17" in what


def test_entry_rewritten_with_every_hash_above_it_is_caught_by_the_checkpoint(
    ledger: Hub,
) -> None:
    def change(session: Session) -> None:
        forge(entry(session, 17), event(99))
        session.flush()
        _rebuild_tree(session)

    tamper(ledger, change)
    seq, what = first_bad(ledger)
    assert seq == 16
    assert "entries 16 to 39 no longer give the root signed in checkpoint #2" in what


def _rebuild_tree(session: Session) -> None:
    """What a careful attacker without the signing key would do: recompute every hash."""
    session.execute(delete(LedgerTileRow))
    leaves = [bytes(h) for h in session.scalars(select(LedgerEntryRow.leaf_hash).order_by("seq"))]
    level = leaves
    height = 0
    levels = []
    while level:
        levels.append(level)
        if height % TILE_HEIGHT == 0:
            for start in range(0, len(level), TILE_WIDTH):
                session.add(
                    LedgerTileRow(
                        level=height // TILE_HEIGHT,
                        start=start,
                        hashes=b"".join(level[start : start + TILE_WIDTH]),
                    )
                )
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        height += 1
    frontier = []
    size, offset = len(leaves), 0
    for h in range(size.bit_length() - 1, -1, -1):
        if size >> h & 1:
            frontier.append(levels[h][offset >> h])
            offset += 1 << h
    head = session.get(LedgerHeadRow, 1)
    assert head is not None
    head.frontier = b"".join(frontier)
    assert len(root_from_frontier(frontier)) == 32


def test_deleted_entry_is_named(ledger: Hub) -> None:
    tamper(ledger, lambda s: s.execute(delete(LedgerEntryRow).where(LedgerEntryRow.seq == 17)))
    assert first_bad(ledger) == (17, "entries 17 to 17 are missing")


def test_deleted_newest_entry_is_named(ledger: Hub) -> None:
    tamper(ledger, lambda s: s.execute(delete(LedgerEntryRow).where(LedgerEntryRow.seq == 39)))
    seq, what = first_bad(ledger)
    assert seq == 39 and "missing" in what


def test_entry_inserted_after_the_end_is_named(ledger: Hub) -> None:
    def change(session: Session) -> None:
        data = canonical_bytes(event(40))
        session.add(
            LedgerEntryRow(
                seq=SIZE,
                time=event(40).time,
                action="decision",
                decision="deny",
                outcome="success",
                origin="af",
                recipient="team",
                actor="job:sync",
                participant=event(40).participant,
                leaf_hash=leaf_hash(data),
                canonical=data,
            )
        )

    tamper(ledger, change)
    seq, what = first_bad(ledger)
    assert seq == SIZE and "added outside the writer" in what


def test_entry_inserted_in_the_middle_is_named(ledger: Hub) -> None:
    def change(session: Session) -> None:
        for seq in range(SIZE - 1, 16, -1):  # make room at 17, highest first
            session.execute(
                update(LedgerEntryRow).where(LedgerEntryRow.seq == seq).values(seq=seq + 1)
            )
        row = LedgerEntryRow(seq=17)
        forge(row, event(77))
        session.add(row)

    tamper(ledger, change)
    seq, what = first_bad(ledger)
    assert seq == 17 and "stored tree hash over entry 17" in what


def test_reordered_entries_are_named(ledger: Hub) -> None:
    def change(session: Session) -> None:
        for old, new in ((17, -1), (18, 17), (-1, 18)):
            session.execute(update(LedgerEntryRow).where(LedgerEntryRow.seq == old).values(seq=new))

    tamper(ledger, change)
    seq, what = first_bad(ledger)
    assert seq == 17 and "stored tree hash over entry 17" in what


def test_search_column_that_disagrees_with_the_bytes_is_named(ledger: Hub) -> None:
    tamper(ledger, lambda s: setattr(entry(s, 21), "participant", "p-" + "0" * 32))
    assert first_bad(ledger) == (
        21,
        "search column(s) participant do not match the stored bytes",
    )


def _purge_first_ten(session: Session) -> None:
    from datetime import UTC, datetime

    session.execute(
        update(LedgerEntryRow)
        .where(LedgerEntryRow.seq < 10)
        .values(canonical=None, participant=None, actor=None, purged_at=datetime.now(UTC))
    )


TAMPERING: dict[str, Callable[[Session], object]] = {
    "nothing": lambda s: None,
    "bytes": lambda s: setattr(entry(s, 17), "canonical", b"{}"),
    "forged": lambda s: forge(entry(s, 9), event(99)),
    "deleted": lambda s: s.delete(entry(s, 22)),
    "column": lambda s: setattr(entry(s, 33), "actor", "someone else"),
    "purged": _purge_first_ten,
}


SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@SQLITE_ONLY  # the helper process is for SQLite
@pytest.mark.parametrize("change", TAMPERING, ids=str)
def test_a_helper_process_finds_what_one_process_finds(
    ledger: Hub, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """On SQLite a second process scans blocks from the front while the verifying one
    scans from the back; put together in order, the result is the same."""
    assert ledger.db.dialect == "sqlite"
    from hub.ledger import verify_scan

    tamper(ledger, TAMPERING[change])

    def run(min_blocks: int) -> tuple[list[object], list[tuple[int, int]], int]:
        monkeypatch.setattr(verify_scan, "HELPER_MIN_BLOCKS", min_blocks)
        with ledger.db.session() as session:
            report = verify_ledger(session, verifier(ledger), block_level=2)
        return report.problems, report.purged, report.size

    alone = run(10**9)
    assert run(1) == alone
    assert (change == "nothing") == (alone[0] == [])


@SQLITE_ONLY
def test_verify_scans_everything_itself_when_its_helper_fails(
    ledger: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ledger.db.dialect == "sqlite"
    import sys

    from hub.ledger import verify_scan

    tamper(ledger, TAMPERING["column"])
    monkeypatch.setattr(verify_scan, "HELPER_MIN_BLOCKS", 1)
    expected = verify(ledger).problems
    for command in (
        ("/nonexistent/python",),  # cannot start
        (sys.executable, "-c", "import sys; sys.stdin.buffer.read(9); sys.exit(3)"),  # dies
    ):
        monkeypatch.setattr(verify_scan._Helper, "COMMAND", command)
        with ledger.db.session() as session:
            report = verify_ledger(session, verifier(ledger), block_level=1)
        assert report.problems == expected
        assert report.size == SIZE


def test_changed_checkpoint_note_is_named(ledger: Hub, cli) -> None:
    def change(session: Session) -> None:
        row = session.get(LedgerCheckpointRow, 2)
        assert row is not None
        row.note = row.note.replace("\n40\n", "\n41\n")

    tamper(ledger, change)
    seq, what = first_bad(ledger)
    assert seq is None and what.startswith("checkpoint #2 (size 40):")
    result = cli("log", "verify")
    assert result.code == 4 and "checkpoint #2" in result.err


def test_checkpoint_columns_that_disagree_with_the_note_are_named(ledger: Hub) -> None:
    tamper(
        ledger,
        lambda s: s.execute(
            update(LedgerCheckpointRow).where(LedgerCheckpointRow.id == 1).values(tree_size=15)
        ),
    )
    assert first_bad(ledger) == (
        None,
        "checkpoint #1 (size 15): its size or root columns differ from its signed note",
    )


def test_truncation_with_checkpoints_removed_is_caught_by_the_witness_copy(
    hub: Hub, evi_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVI_LEDGER__WITNESS_DIR", str(evi_home / "witness"))
    get_settings.cache_clear()
    hub.settings = get_settings()
    pm = get_plugin_manager()
    for start, end in ((0, 16), (16, SIZE)):
        with hub.db.session() as session:
            append_many(session, [event(i) for i in range(start, end)])
            write_checkpoint(session, hub.settings, pm)
    assert verify(hub).ok

    def truncate(session: Session) -> None:
        session.execute(delete(LedgerEntryRow).where(LedgerEntryRow.seq >= 16))
        session.execute(delete(LedgerTileRow))
        session.execute(delete(LedgerCheckpointRow).where(LedgerCheckpointRow.tree_size == SIZE))
        session.flush()
        _rebuild_tree(session)
        head = session.get(LedgerHeadRow, 1)
        assert head is not None
        head.size = 16

    tamper(hub, truncate)
    seq, what = first_bad(hub)
    assert seq == 16
    assert "covers 40 entries but only 16 are stored (the ledger was truncated)" in what


def test_a_configured_witness_directory_that_is_not_there_is_a_problem(
    hub: Hub, evi_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An unmounted share read as "no copies" would hide a truncation the copies catch.
    import shutil

    monkeypatch.setenv("EVI_LEDGER__WITNESS_DIR", str(evi_home / "witness"))
    get_settings.cache_clear()
    hub.settings = get_settings()
    with hub.db.session() as session:
        append_many(session, [event(i) for i in range(8)])
        write_checkpoint(session, hub.settings, get_plugin_manager())
    assert verify(hub).ok
    shutil.rmtree(evi_home / "witness")
    report = verify(hub)
    assert not report.ok
    assert any("is configured but is not there" in p.what for p in report.problems)


def test_changed_tree_hash_in_a_tile_is_named(ledger: Hub) -> None:
    def change(session: Session) -> None:
        run = session.get(LedgerTileRow, (1, 1))  # the subtree over entries 16 to 31
        assert run is not None and len(run.hashes) == 32
        run.hashes = bytes([run.hashes[0] ^ 1]) + run.hashes[1:]

    tamper(ledger, change)
    seq, what = first_bad(ledger)
    assert seq == 16 and "stored tree hash over entries 16 to 31 does not match" in what


def test_tree_hashes_that_belong_to_no_entry_are_named(ledger: Hub) -> None:
    tamper(ledger, lambda s: s.add(LedgerTileRow(level=0, start=SIZE, hashes=b"\x00" * 32)))
    seq, what = first_bad(ledger)
    assert (seq, what) == (None, "1 stored tree hash(es) at level 0 belong to no entry")


def test_entry_bytes_that_are_not_json_are_named(ledger: Hub) -> None:
    def change(session: Session) -> None:
        row = entry(session, 17)
        row.canonical = b"not json"
        row.leaf_hash = leaf_hash(row.canonical)

    tamper(ledger, change)
    report = verify(ledger)
    assert (17, "its stored bytes are not JSON") in [(p.seq, p.what) for p in report.problems]
    assert report.first_problem is not None and report.first_problem.seq == 17


def test_entries_with_escaped_characters_verify(hub: Hub) -> None:
    odd = 'tab\t soh\x01 del\x7f "quote" back\\slash \u2028 å \U0001f600'
    with hub.db.session() as session:
        append_many(
            session,
            [
                LedgerEvent(action=Action.VIEW, actor=odd, origin=odd, participant=odd, reason=odd),
                event(1),
            ],
        )
    report = verify(hub)
    assert report.ok, report.problems


def test_purged_entry_that_still_names_someone_is_named(
    ledger: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from hub.ledger.service import purge

    monkeypatch.setattr(ledger.settings.ledger, "minimum_retention_days", 0)  # purges today's
    purge(ledger, datetime.now(UTC), "cli:test", confirmed=True)  # logged, so covered
    assert verify(ledger).ok
    tamper(ledger, lambda s: setattr(entry(s, 21), "participant", "p-" + "0" * 32))
    assert first_bad(ledger) == (21, "purged but still holds participant")


# -- what the hashes cannot show: the log's own history -----------------------------------


def _hand_purge(session: Session, seq: int) -> None:
    """Clear an entry the way `evi log purge` does, but with no purge in the log."""
    from datetime import UTC, datetime

    session.execute(
        update(LedgerEntryRow)
        .where(LedgerEntryRow.seq == seq)
        .values(
            canonical=None,
            decision=None,
            outcome=None,
            origin=None,
            recipient=None,
            actor=None,
            participant=None,
            correlation_id=None,
            purged_at=datetime.now(UTC),
        )
    )


def test_content_removed_outside_a_logged_purge_is_found(ledger: Hub) -> None:
    # Every hash stays as it was, so only the log's own record of its purges can tell.
    tamper(ledger, lambda s: _hand_purge(s, 25))
    seq, message = first_bad(ledger)
    assert seq == 25 and "no purge in the log covers it" in message


def test_a_logged_purge_covers_what_it_removed_and_nothing_newer(
    ledger: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    from hub.ledger.service import purge

    monkeypatch.setattr(ledger.settings.ledger, "minimum_retention_days", 0)  # purges today's
    with ledger.db.session() as session:  # the first 16 entries are a day older
        session.execute(
            update(LedgerEntryRow)
            .where(LedgerEntryRow.seq < 16)
            .values(time=datetime.now(UTC) - timedelta(days=1))
        )
    # (their times changed under the hashes: rebuild nothing, only check purge coverage)
    with ledger.db.session() as session:
        from hub.ledger.verify_history import check_purges

        found: list[tuple[int | None, str]] = []
        purge(ledger, datetime.now(UTC) - timedelta(hours=1), "cli:test", confirmed=True)
        check_purges(session, lambda seq, what, *rest: found.append((seq, what)))
        assert found == []  # the 16 old ones are covered by the logged purge
        _hand_purge(session, 30)  # a newer one is not
        session.flush()
        check_purges(session, lambda seq, what, *rest: found.append((seq, what)))
        assert [seq for seq, _ in found] == [30]


def test_deleting_every_checkpoint_of_a_database_that_has_signed_is_found(ledger: Hub) -> None:
    tamper(ledger, lambda s: s.execute(delete(LedgerCheckpointRow)))
    report = verify(ledger)
    assert not report.ok
    assert any("its checkpoints were deleted" in p.what for p in report.problems)


def test_problems_beyond_the_listed_ones_are_counted(ledger: Hub) -> None:
    def many(session: Session) -> None:
        for seq in range(0, 30):
            entry(session, seq).actor = "someone else"

    tamper(ledger, many)
    with ledger.db.session() as session:
        report = verify_ledger(session, verifier(ledger), max_problems=10)
    assert len(report.problems) == 10 and report.unlisted >= 20
    assert report.as_json()["unlisted_problems"] == report.unlisted
