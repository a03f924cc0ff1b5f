"""Witness plugin: copy every signed checkpoint into a directory meant for write-once storage.

Set ``[ledger] witness_dir`` (or ``EVI_LEDGER__WITNESS_DIR``) to a directory on separate,
write-once storage (a WORM share, an object-lock bucket mount, another host's export);
a relative path is taken from ``$EVI_HOME``. Unset, the plugin does nothing.

Each checkpoint becomes one new read-only file ``<size>-<root prefix>.checkpoint``
holding the exact signed note; an existing file is never overwritten. A second, different
note for the same size and root prefix is refused (that would mean the log forked).
``evi log verify`` reads this directory back, which is what catches someone who
truncates the database and its checkpoints together.
"""

from __future__ import annotations

import os

from hub.errors import StorageError
from hub.hookspecs import hookimpl
from hub.ledger.checkpoint import Checkpoint
from hub.ledger.witness import SUFFIX, witness_directory
from hub.settings import Settings


def file_name(checkpoint: Checkpoint) -> str:
    return f"{checkpoint.size:012d}-{checkpoint.root.hex()[:16]}{SUFFIX}"


@hookimpl
def evi_checkpoint_signed(checkpoint: Checkpoint, settings: Settings) -> None:
    directory = witness_directory(settings)
    if directory is None:
        return
    # 0755 whatever the umask: whoever may write here may delete the copies
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    target = directory / file_name(checkpoint)
    data = checkpoint.note.encode()
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    except FileExistsError:
        if target.read_bytes() != data:
            raise StorageError(
                f"the witness directory already holds a different checkpoint {target.name}; "
                "the ledger may have been rewritten: run `evi log verify`"
            ) from None
        return
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
