"""The authority's side of things: who the hub subscribed, the pushes received, and what
was written to the feed after its first rounds.

Kept in SQLite (standard library): in memory for an in-process sandbox, or in
``STATE_DIR/state.db`` when a state directory is given, so a sandbox served with
``evi sandbox serve`` keeps subscriptions and received pushes across restarts.

Pushes are stored once per ``Idempotency-Key``. A repeat with the same body returns the
first answer and is counted as a duplicate; a repeat with another body is refused (the
client reused a key by mistake), following the IETF Idempotency-Key draft.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS received (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    body_sha256 TEXT NOT NULL,
    body TEXT NOT NULL,
    reference TEXT NOT NULL,
    repeats INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS subscription (number TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS setting (name TEXT PRIMARY KEY, value TEXT NOT NULL);
-- What was written to the feed after the first rounds, in order: rounds added (person
-- NULL), or a person registered late whose first `rounds` rounds were written again.
CREATE TABLE IF NOT EXISTS timeline_event (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    person INTEGER,
    rounds INTEGER NOT NULL
);
-- People registered late whose records are written again when the feed is next read.
CREATE TABLE IF NOT EXISTS rewrite_due (person INTEGER PRIMARY KEY, rounds INTEGER NOT NULL);
"""


class KeyReusedError(Exception):
    """An idempotency key came back with a different body."""


@dataclass(frozen=True)
class Receipt:
    reference: str
    duplicate: bool


class SandboxState:
    """Thread-safe store of subscriptions and received pushes for one sandbox."""

    def __init__(self, name: str, state_dir: Path | None) -> None:
        if state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True)
            target = str(state_dir / "state.db")
        else:
            target = ":memory:"
        self.name = name
        self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self.version = 0  # bumped on every subscription change, for caches

    # -- subscriptions ---------------------------------------------------------------
    def subscribe(self, number: str, rewrite: tuple[int, int] | None = None) -> bool:
        """Add a subscription; returns whether it is new.

        ``rewrite`` (person index, rounds): if the subscription is new, that person's
        records are to be written to the feed again (:meth:`write_rewrites`), recorded in
        the same transaction.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO subscription (number) VALUES (?)", (number,)
                )
                new = cur.rowcount == 1
                if new and rewrite is not None:
                    self._db.execute(
                        "INSERT OR IGNORE INTO rewrite_due (person, rounds) VALUES (?, ?)",
                        rewrite,
                    )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self.version += 1
            return new

    def unsubscribe(self, number: str) -> bool:
        """Cancel a subscription; returns whether there was one."""
        with self._lock:
            cur = self._db.execute("DELETE FROM subscription WHERE number = ?", (number,))
            self.version += 1
            return cur.rowcount == 1

    def subscribed(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT number FROM subscription ORDER BY number").fetchall()
        return [row[0] for row in rows]

    # -- the feed after its first rounds -------------------------------------------------
    def timeline_events(self) -> list[tuple[int | None, int]]:
        """``(person or None, rounds)`` in the order they happened."""
        with self._lock:
            rows = self._db.execute(
                "SELECT person, rounds FROM timeline_event ORDER BY seq"
            ).fetchall()
        return [(row[0], row[1]) for row in rows]

    def add_timeline_event(self, person: int | None, rounds: int) -> None:
        """Write an event after the rewrites due (they happened before it)."""
        with self._lock, self._transaction():
            self._write_rewrites()
            self._db.execute(
                "INSERT INTO timeline_event (person, rounds) VALUES (?, ?)", (person, rounds)
            )
            self.version += 1

    def write_rewrites(self) -> None:
        """Write the records of the people registered late to the feed, in person order."""
        with self._lock:
            if self._db.execute("SELECT 1 FROM rewrite_due LIMIT 1").fetchone() is None:
                return
            with self._transaction():
                self._write_rewrites()
                self.version += 1

    def _write_rewrites(self) -> None:
        due = self._db.execute("SELECT person, rounds FROM rewrite_due ORDER BY person").fetchall()
        self._db.executemany("INSERT INTO timeline_event (person, rounds) VALUES (?, ?)", due)
        self._db.execute("DELETE FROM rewrite_due")

    def stamp(self) -> tuple[int, int]:
        """Changes whenever the state does, in this process or another one."""
        with self._lock:
            (data_version,) = self._db.execute("PRAGMA data_version").fetchone()
        return self.version, data_version

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- pushes ------------------------------------------------------------------------
    def receive(self, key: str, body: dict[str, Any]) -> Receipt:
        """Store a push once per key; raises :class:`KeyReusedError` for a changed body."""
        receipt = self.receive_many([(key, body)])[0]
        if isinstance(receipt, KeyReusedError):
            raise receipt
        return receipt

    def receive_many(
        self, pushes: Sequence[tuple[str, dict[str, Any]]]
    ) -> list[Receipt | KeyReusedError]:
        """Store several pushes in order in one transaction; one answer per push.

        Each push is judged on its own, exactly as :meth:`receive` would (a repeated key in
        the same batch is a duplicate of the first); a reused key with another body gets a
        :class:`KeyReusedError` in its place instead of being raised.
        """
        answers: list[Receipt | KeyReusedError] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for key, body in pushes:
                    answers.append(self._receive_one(key, body))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return answers

    def _receive_one(self, key: str, body: dict[str, Any]) -> Receipt | KeyReusedError:
        text = json.dumps(body, sort_keys=True, ensure_ascii=False)
        digest = hashlib.sha256(text.encode()).hexdigest()
        row = self._db.execute(
            "SELECT body_sha256, reference FROM received WHERE key = ?", (key,)
        ).fetchone()
        if row is not None:
            if row[0] != digest:
                return KeyReusedError(key)
            self._db.execute("UPDATE received SET repeats = repeats + 1 WHERE key = ?", (key,))
            return Receipt(reference=row[1], duplicate=True)
        reference = f"{self.name}-" + hashlib.sha256(key.encode()).hexdigest()[:16]
        self._db.execute(
            "INSERT INTO received (key, body_sha256, body, reference) VALUES (?, ?, ?, ?)",
            (key, digest, text, reference),
        )
        return Receipt(reference=reference, duplicate=False)

    def received(self, limit: int | None = None) -> dict[str, Any]:
        """``{"unique": N, "duplicates": M, "items": [...]}`` in arrival order."""
        with self._lock:
            unique, duplicates = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(repeats), 0) FROM received"
            ).fetchone()
            query = "SELECT key, reference, repeats, body FROM received ORDER BY seq"
            if limit is not None:
                rows = self._db.execute(query + " LIMIT ?", (limit,)).fetchall()
            else:
                rows = self._db.execute(query).fetchall()
        items = [
            {"idempotency_key": k, "reference": ref, "repeats": rep, "body": json.loads(body)}
            for k, ref, rep, body in rows
        ]
        return {"unique": unique, "duplicates": duplicates, "items": items}

    # -- settings that outlive a restart (e.g. rounds advanced) -----------------------------
    def get_setting(self, name: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM setting WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_setting(self, name: str, value: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO setting (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
