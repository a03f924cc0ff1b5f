"""An authority's change feed, computed instead of stored.

Record ``j`` is round ``j // population`` of person ``j % population``: every person gets
one record per round and rounds follow each other in time. Records are written in the
feed at sequence numbers, each with the change time ``EPOCH + seq * STEP``; record ``j``
is first written at ``seq == j``. When the hub registers a person after their records
were written, the authority writes them again at the end of the feed, as changed now
(what docs/connectors.md asks of an authority that keeps a list of followed people), and
they leave their old places: :class:`Timeline`. A feed restricted to some people (the
subscribed ones) is a sorted list of person indices, and any slice of it is found by
arithmetic, so paging through a million records costs no more than paging through ten.
"""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EPOCH = datetime(2024, 1, 8, 6, 0, tzinfo=UTC)
STEP = timedelta(seconds=61)


def changed_at(seq: int) -> datetime:
    """The change time of what is written at sequence number ``seq`` (unique per number)."""
    return EPOCH + seq * STEP


def first_position_at_or_after(when: datetime) -> int:
    """The first sequence number whose change time is ``when`` or later."""
    if when <= EPOCH:
        return 0
    steps, rest = divmod(when - EPOCH, STEP)
    return steps + (1 if rest else 0)


def draw(seed: int, purpose: str, j: int) -> random.Random:
    """A generator for one record and one purpose: the same every time it is asked."""
    return random.Random(f"{purpose}:{seed}:{j}")


@dataclass(frozen=True)
class Feed:
    """The positions, in order, of ``rounds`` rounds of records about ``people``."""

    population: int
    rounds: int
    people: Sequence[int]  # sorted person indices

    @property
    def end(self) -> int:
        """One past the last position that exists."""
        return self.rounds * self.population

    def count(self, start: int) -> int:
        """How many records at position ``start`` or later."""
        n = len(self.people)
        start = max(start, 0)
        if n == 0 or start >= self.end:
            return 0
        r0, p0 = divmod(start, self.population)
        return (n - bisect_left(self.people, p0)) + (self.rounds - r0 - 1) * n

    def positions(self, start: int, offset: int, limit: int) -> list[int]:
        """Up to ``limit`` positions from ``start`` on, skipping the first ``offset``."""
        n = len(self.people)
        start = max(start, 0)
        if n == 0 or limit <= 0 or start >= self.end:
            return []
        r, p0 = divmod(start, self.population)
        i = bisect_left(self.people, p0)
        first = n - i
        if offset < first:
            i += offset
        else:
            k = offset - first
            r, i = r + 1 + k // n, k % n
        out: list[int] = []
        while len(out) < limit and r < self.rounds:
            out.append(r * self.population + self.people[i])
            i += 1
            if i == n:
                i, r = 0, r + 1
        return out


@dataclass(frozen=True)
class Block:
    """A run of sequence numbers in an authority's feed, in the order they were written.

    A block of ``rounds`` rounds of everyone's records (``person`` None, rounds from
    ``first_round`` on), or one person's records of rounds ``0 .. rounds - 1`` written again,
    as changed when the hub registered that person (``person`` set).
    """

    start: int
    rounds: int
    first_round: int = 0
    person: int | None = None

    def size(self, population: int) -> int:
        return self.rounds * (population if self.person is None else 1)

    def record(self, population: int, seq: int) -> int:
        """The record (position ``j``) at sequence number ``seq`` of this block."""
        q = seq - self.start
        if self.person is None:
            return self.first_round * population + q
        return q * population + self.person


class Timeline:
    """Every sequence number an authority has written, block by block.

    Record ``j`` is first written at sequence number ``j`` (the rounds, see :class:`Feed`);
    when the hub registers a person later, the authority writes that person's records again
    as changed now, at the end of the feed, and they are no longer found at their old
    places. A change time is a function of the sequence number (:func:`changed_at`), so the
    feed is ordered by it, as an authority's change feed is. Hand-written: the feed is
    computed, not stored, so that paging a million records costs no more than ten.
    """

    def __init__(self, population: int, blocks: Sequence[Block]) -> None:
        self.population = population
        self.blocks = tuple(blocks)
        self._starts = [b.start for b in self.blocks]

    @classmethod
    def build(
        cls, population: int, rounds: int, events: Sequence[tuple[int | None, int]]
    ) -> Timeline:
        """The first ``rounds`` rounds, then ``events`` in order: ``(None, n)`` is ``n``
        more rounds; ``(person, _)`` that person's records of every round so far written
        again (the number beside a person, the rounds when it happened, is not read: a
        sandbox restarted with other first rounds writes what exists)."""
        blocks: list[Block] = []
        seq, total = 0, 0

        def add_rounds(n: int) -> None:
            nonlocal seq, total
            if n > 0:
                blocks.append(Block(seq, n, first_round=total))
                seq, total = seq + n * population, total + n

        add_rounds(rounds)
        for person, n in events:
            if person is None:
                add_rounds(n)
            elif total > 0:
                blocks.append(Block(seq, total, person=person))
                seq += total
        return cls(population, blocks)

    @property
    def rounds(self) -> int:
        """How many rounds of records exist."""
        return sum(b.rounds for b in self.blocks if b.person is None)

    @property
    def end(self) -> int:
        """One past the last sequence number written."""
        return self.blocks[-1].start + self.blocks[-1].size(self.population) if self.blocks else 0

    def record(self, seq: int) -> int:
        """The record (position ``j``: person ``j % population``, round ``j // population``)
        at sequence number ``seq``."""
        block = self.blocks[bisect_right(self._starts, seq) - 1]
        return block.record(self.population, seq)

    def feed(self, people: Sequence[int]) -> TimelineFeed:
        """The records about ``people`` (sorted person indices) each at its latest place."""
        return TimelineFeed(self, people)


class TimelineFeed:
    """A :class:`Timeline` restricted to some people: sequence numbers in order."""

    def __init__(self, timeline: Timeline, people: Sequence[int]) -> None:
        self.timeline = timeline
        chosen = set(people)
        last: dict[int, int] = {}
        for i, block in enumerate(timeline.blocks):
            if block.person is not None and block.person in chosen:
                last[block.person] = i
        pop = timeline.population
        self._parts: list[Feed | bool] = []
        for i, block in enumerate(timeline.blocks):
            if block.person is None:
                later = [p for p, at in last.items() if at > i]
                kept = sorted(chosen.difference(later)) if later else people
                self._parts.append(Feed(pop, block.rounds, kept))
            else:
                self._parts.append(last.get(block.person) == i)

    def _counted(self, i: int, local: int) -> int:
        part, block = self._parts[i], self.timeline.blocks[i]
        if isinstance(part, Feed):
            return part.count(local)
        return max(block.rounds - local, 0) if part else 0

    def _local(self, i: int, local: int, offset: int, limit: int) -> list[int]:
        part, block = self._parts[i], self.timeline.blocks[i]
        if isinstance(part, Feed):
            return [block.start + q for q in part.positions(local, offset, limit)]
        first = local + offset
        return list(range(block.start + first, block.start + min(block.rounds, first + limit)))

    def _first_block(self, start: int) -> int:
        return max(bisect_right(self.timeline._starts, max(start, 0)) - 1, 0)

    def count(self, start: int) -> int:
        """How many records at sequence number ``start`` or later."""
        total = 0
        for i in range(self._first_block(start), len(self.timeline.blocks)):
            total += self._counted(i, max(start - self.timeline.blocks[i].start, 0))
        return total

    def positions(self, start: int, offset: int, limit: int) -> list[int]:
        """Up to ``limit`` sequence numbers from ``start`` on, skipping the first ``offset``."""
        out: list[int] = []
        for i in range(self._first_block(start), len(self.timeline.blocks)):
            if len(out) >= limit:
                break
            local = max(start - self.timeline.blocks[i].start, 0)
            here = self._counted(i, local)
            if offset >= here:
                offset -= here
                continue
            out += self._local(i, local, offset, limit - len(out))
            offset = 0
        return out

    def entries(self, start: int, offset: int, limit: int) -> list[tuple[int, int]]:
        """As :meth:`positions`, each with its record: ``(sequence number, j)``."""
        return [(s, self.timeline.record(s)) for s in self.positions(start, offset, limit)]
