"""An authority's change feed, computed instead of stored.

Record ``j`` is round ``j // population`` of person ``j % population``: every person gets
one record per round, rounds follow each other in time, and each record's change time is
``EPOCH + j * STEP``. A feed restricted to some people (the subscribed ones) is a sorted
list of person indices, and any slice of it is found by arithmetic, so paging through a
million records costs no more than paging through ten.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EPOCH = datetime(2024, 1, 8, 6, 0, tzinfo=UTC)
STEP = timedelta(seconds=61)


def changed_at(j: int) -> datetime:
    """When record ``j`` last changed (unique per record)."""
    return EPOCH + j * STEP


def first_position_at_or_after(when: datetime) -> int:
    """The first record position whose change time is ``when`` or later."""
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
