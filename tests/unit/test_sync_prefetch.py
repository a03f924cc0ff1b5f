"""Reading ahead during a pull keeps order, hands over failures in place, and stops early."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from hub.connector.errors import TransientConnectorError
from hub.sync.prefetch import prefetched


def test_items_come_in_order_and_a_failure_after_the_items_read_before_it() -> None:
    def pages() -> Iterator[int]:
        yield from range(10)
        raise TransientConnectorError("af", "the authority is unavailable")

    got: list[int] = []
    with pytest.raises(TransientConnectorError, match="unavailable"):
        for page in prefetched(pages(), ahead=3):
            got.append(page)
    assert got == list(range(10))


def test_a_consumer_that_stops_early_stops_the_reading_after_a_few_items() -> None:
    read: list[int] = []
    closed = threading.Event()

    def pages() -> Iterator[int]:
        try:
            for i in range(10_000):
                read.append(i)
                yield i
        finally:
            closed.set()

    items = prefetched(pages(), ahead=2)
    assert [next(items), next(items)] == [0, 1]
    items.close()  # e.g. storing a batch failed
    assert closed.wait(5)
    assert len(read) <= 6  # two taken, at most `ahead` queued and one in hand


def test_an_empty_feed_ends_at_once() -> None:
    assert list(prefetched(iter([]))) == []
