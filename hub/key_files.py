"""The key files of a rotation (:mod:`hub.key_rotation`), swapped so that a crash at any
moment leaves a hub that opens:

1. the new key is written beside the old one as ``<name>.key.next`` (0600, synced);
2. the rotation's transaction commits (from then on the database needs the new key);
3. the old key is copied to ``keys/retired/<name>-<UTC time>.key``, then ``.next``
   replaces ``<name>.key`` in one step (``os.replace``).

A crash before 2 leaves the old key in place and a stale ``.next``, which the next
rotation overwrites. A crash after 2 leaves a database that records the ``.next`` key's
fingerprint: the next command that opens the keys finishes step 3
(:func:`finish_rotation`, called by :func:`hub.store.meta.open_keyring`).

The standard library does the work (``os.replace``, ``os.fsync`` in :func:`hub.keys.write_key_file`
and :func:`hub.keys.sync_dir`): no package does this particular dance.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from hub.keys import KeySource, key_fingerprint, sync_dir, write_key_file


def next_path(source: KeySource) -> Path:
    """Where a rotation keeps the new key until its transaction has committed."""
    return source.path.with_name(source.path.name + ".next")


def swap(source: KeySource, pending: Path) -> Path:
    """Step 3: retire the current key file (a copy under ``retired/``), then put
    ``pending`` in its place in one step. Returns the retired copy's path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    retired = source.path.parent / "retired" / f"{source.name}-{stamp}.key"
    current = KeySource(source.name, None, source.path).load()
    if current is not None:
        write_key_file(retired, current)
    os.replace(pending, source.path)
    sync_dir(source.path.parent)
    return retired


def finish_rotation(source: KeySource, recorded: str) -> bool:
    """Finish a rotation that committed but did not swap its key files (a crash between
    steps 2 and 3). Returns whether it did: ``False`` if there is no such rotation."""
    pending = next_path(source)
    if source.from_env is not None or not pending.is_file():
        return False
    key = KeySource(source.name, None, pending).load()
    if key is None or key_fingerprint(key) != recorded:
        return False
    swap(source, pending)
    return True
