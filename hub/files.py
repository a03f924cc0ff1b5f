"""Files the hub writes for people to keep (exports, backups): whole or not at all.

:func:`staged` hands out a new, private (0600) file beside the target; when the block ends
without an error it replaces the target in one step (``os.replace``), and on any error it
is removed and whatever the target held before is untouched. So an export or backup that
fails half-way (a wrong ``$EVI_HOME``, a full disk, Ctrl-C) never leaves a truncated file,
nor destroys yesterday's file of the same name. The standard library's ``tempfile`` and
``os.replace`` do the work; the package made for this (``atomicwrites``) is no longer
maintained.
"""

from __future__ import annotations

import os
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
    if not target.parent.is_dir():
        raise InputError(f"{target.parent} is not a directory; create it first")
    return target


@contextmanager
def staged(target: Path) -> Iterator[Path]:
    """A private file to write ``target``'s new content into (see the module docstring)."""
    check_target(target)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    try:
        yield Path(name)
        os.replace(name, target)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
