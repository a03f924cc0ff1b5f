"""Files the hub writes for people to keep (exports, backups): whole or not at all.

:func:`staged` hands out a new, private (0600) file beside the target; when the block ends
without an error it replaces the target in one step (``os.replace``), and on any error it
is removed and whatever the target held before is untouched. So an export or backup that
fails half-way (a wrong ``$EVI_HOME``, a full disk, Ctrl-C) never leaves a truncated file,
nor destroys yesterday's file of the same name. The standard library's ``tempfile`` and
``os.replace`` do the work; the package made for this (``atomicwrites``) is no longer
maintained.

:func:`check_target` refuses what must not be replaced that way: a device, FIFO or socket
(``-o /dev/null`` would become a file), the hub's own database, keys and witness copies,
and any place in a directory another user may write that is not sticky: there they could
swap the private file for a link to one of their own while it is written, and read it.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hub.errors import InputError


def check_target(target: Path) -> Path:
    """``target`` if a file can be written there, else an error saying what to give: a
    command that reads or logs something before it writes calls this first."""
    if target.is_dir():
        raise InputError(f"{target} is a directory; give the name of a file to write")
    parent = target.parent
    if not parent.is_dir():
        raise InputError(f"{parent} is not a directory; create it first")
    try:
        mode = target.lstat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise InputError(f"{target} is not a regular file (a device, pipe or socket); give a file")
    shared = parent.stat().st_mode
    if shared & (stat.S_IWGRP | stat.S_IWOTH) and not shared & stat.S_ISVTX:
        raise InputError(
            f"{parent} may be written by other users and is not sticky (mode "
            f"{stat.S_IMODE(shared):04o}): one of them could swap the file while it is "
            "written and read it; write into a directory only you (or root) may write"
        )
    where = parent.resolve() / target.name
    for own, what in _hub_files():
        if where == own or own in where.parents:
            raise InputError(f"{target} is {what}; give another file")
    return target


def _hub_files() -> list[tuple[Path, str]]:
    """What the hub keeps that an export must never replace, resolved; none when the
    configuration cannot be read (the command will say why)."""
    from hub.errors import ConfigError
    from hub.settings import get_settings

    try:
        settings = get_settings()
        url = settings.effective_database_url()
    except ConfigError:
        return []
    found = [(settings.keys_dir.resolve(), "in the hub's key directory")]
    if url.startswith("sqlite:///"):
        database = Path(url.removeprefix("sqlite:///")).resolve()
        for suffix in ("", "-wal", "-shm", "-writer", "-journal"):
            found.append((database.with_name(database.name + suffix), "the hub's database"))
    from hub.ledger.witness import witness_directory

    if (witnesses := witness_directory(settings)) is not None:
        found.append((witnesses.resolve(), "in the ledger's witness directory"))
    return found


@contextmanager
def staged(target: Path) -> Iterator[Path]:
    """A private file to write ``target``'s new content into (see the module docstring)."""
    check_target(target)
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    except OSError as exc:  # no permission, a read-only or vanished directory
        raise InputError(f"{target.parent}: cannot write there ({exc.strerror})") from None
    os.close(fd)
    try:
        yield Path(name)
        os.replace(name, target)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
