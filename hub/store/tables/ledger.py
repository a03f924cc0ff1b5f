"""Tables of the transfer log (ledger).

* ``ledger_entry``: one row per leaf. ``seq`` is the 0-based leaf index, gap-free (on
  SQLite it is the rowid, so the table is stored in sequence order with no separate key
  index). ``canonical`` holds the exact leaf input bytes (RFC 8785 JSON); the other
  columns are copies of fields inside those bytes, kept only so searches can find
  entries (``evi log verify`` checks they match). Only time, participant and action are
  indexed: the parties and the decision take a handful of values each, so a scan in
  sequence order finds them as fast as an index would, and every index costs each
  append. A purged entry keeps ``seq``, ``time``, ``action`` and ``leaf_hash``; its
  bytes and search columns are cleared.

  The participant and time indexes are *per block*: they lead with ``seq_block`` (``seq``
  shifted right by :data:`BLOCK_BITS`, computed by the database), so an append only
  touches the last few pages of each index. Keyed on the participant or time alone, each
  batch would land on pages all over the index (pseudonyms are random; times arrive out
  of order), which at a million entries cost more than everything else in an append. A
  search by participant or time therefore looks once in each block
  (:func:`hub.ledger.records.find_entries`); the action index keeps its plain key,
  because its few values each grow at their end.
* ``ledger_tile``: the stored tree (see :mod:`hub.ledger.tiles`): runs of the hashes of
  the complete subtrees at every fourth level, level 0 being the leaf hashes again, so
  an entry row that is swapped, shifted or rewritten together with its leaf hash is
  still pinned to its place. Roots and proofs read a few of these rows. Never updated.
* ``ledger_head``: one row (``id = 1``) that serialises writers and holds the current
  size and the right edge of the tree (``frontier``) so an append needs no tree scan.
* ``ledger_checkpoint``: every signed checkpoint note.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Computed,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.base import Base, UTCDateTime

BLOCK_BITS = 14
"""Entries ``k·2^14`` to ``(k+1)·2^14 - 1`` form block ``k`` of the search indexes."""


SEARCH_COLUMNS = (
    "action",
    "decision",
    "outcome",
    "origin",
    "recipient",
    "actor",
    "participant",
    "correlation_id",
)
"""Columns of ``ledger_entry`` that copy a field of the stored bytes (besides ``time``);
a purge clears all of them but ``action``."""


class LedgerEntryRow(Base):
    __tablename__ = "ledger_entry"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(40), index=True)
    decision: Mapped[str | None] = mapped_column(String(8))
    outcome: Mapped[str | None] = mapped_column(String(20))
    origin: Mapped[str | None] = mapped_column(String(64))
    recipient: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str | None] = mapped_column(String(200))
    participant: Mapped[str | None] = mapped_column(String(64))
    correlation_id: Mapped[str | None] = mapped_column(String(200))
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    canonical: Mapped[bytes | None] = mapped_column(LargeBinary)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    seq_block: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        Computed(f"seq >> {BLOCK_BITS}", persisted=True),
    )

    __table_args__ = (
        Index("ix_ledger_entry_block_participant", "seq_block", "participant"),
        Index("ix_ledger_entry_block_time", "seq_block", "time"),
    )


class LedgerTileRow(Base):
    __tablename__ = "ledger_tile"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    start: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hashes: Mapped[bytes] = mapped_column(LargeBinary)


class LedgerHeadRow(Base):
    __tablename__ = "ledger_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    frontier: Mapped[bytes] = mapped_column(LargeBinary)


class LedgerCheckpointRow(Base):
    __tablename__ = "ledger_checkpoint"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tree_size: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_ledger_checkpoint_tree_size", "tree_size"),)
