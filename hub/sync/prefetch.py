"""Reading ahead: the next batches are fetched while the current one is being stored.

A pull alternates between waiting on the authority (latency, then its server building
the page) and storing what arrived. :func:`prefetched` runs the fetching side in a
background thread a few batches ahead, so both overlap; memory stays bounded by
``ahead`` batches.

Written by hand because it is a dozen lines over :mod:`queue` and :mod:`threading`, and
must keep two properties no general-purpose helper documents: items and the producer's
exception arrive in the order they happened (records read before a failure are stored
before the failure is raised), and a consumer that stops early makes the producer stop
after its current item instead of reading the whole feed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from queue import Empty, Full, Queue
from typing import Any, TypeVar

T = TypeVar("T")

_ITEM, _DONE, _ERROR = "item", "done", "error"
_POLL_SECONDS = 0.1
_JOIN_SECONDS = 5.0


def prefetched(items: Iterator[T], ahead: int = 2) -> Iterator[T]:
    """Yield ``items`` as they come, fetched in a background thread up to ``ahead`` ahead.

    An exception raised by ``items`` is raised here after every item before it.
    """
    queue: Queue[tuple[str, Any]] = Queue(maxsize=max(1, ahead))
    stop = threading.Event()

    def put(entry: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                queue.put(entry, timeout=_POLL_SECONDS)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((_ITEM, item)):
                    return
            put((_DONE, None))
        except BaseException as exc:
            put((_ERROR, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="evi-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            try:
                kind, value = queue.get(timeout=_POLL_SECONDS)
            except Empty:
                if not thread.is_alive() and queue.empty():
                    return  # the producer was stopped
                continue
            if kind == _ITEM:
                yield value
            elif kind == _DONE:
                return
            else:
                raise value
    finally:
        stop.set()
        thread.join(_JOIN_SECONDS)
