"""The second process of ``evi log verify`` on SQLite: scans the blocks it is sent.

Run as ``python -m hub.ledger.verify_worker`` by :mod:`hub.ledger.verify_scan`, never by
hand. It reads pickled messages on standard input — first ``(database path, block
level, wanted tree sizes)``, then ``(start, stop)`` of one block at a time, ``None`` to
stop — and answers each block with the pickled :class:`~hub.ledger.verify_blocks.
BlockResult` on standard output. It opens its own connection, read-only (``query_only``), and reads
everything in one transaction; it writes nothing.

Why a process and not a thread: the scan is hashing in Python (which holds the GIL) and
reading and JSON-checking rows in SQLite, whose allocator takes one lock for the whole
process; two threads doing this took about twice the CPU time of one for the same work,
two processes each take the same time as one. It imports only the standard library and
:mod:`hub.ledger.verify_blocks`, so it is up in about a tenth of a second.
"""

from __future__ import annotations

import pickle
import sqlite3
import sys
from typing import BinaryIO

from hub.ledger.verify_blocks import scan_block


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    # Messages come from the verifying process that started this one, over its own pipe.
    path, block_level, wanted = pickle.load(requests)  # noqa: S301
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        cursor = connection.cursor()
        cursor.execute("PRAGMA query_only=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA mmap_size=1099511627776")  # see verify_scan._mapped
        cursor.execute("BEGIN")  # one snapshot for every block
        while (block := pickle.load(requests)) is not None:  # noqa: S301
            start, stop = block
            result = scan_block(cursor, "sqlite", start, stop, block_level, wanted)
            pickle.dump(result, answers, protocol=pickle.HIGHEST_PROTOCOL)
            answers.flush()
        cursor.execute("COMMIT")
    finally:
        connection.close()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
