"""Files the hub trusts must be its own user's: keys, configuration, the home itself.

Like ssh's ``StrictModes``: before the hub reads a key or ``evi.toml`` from a place, that
place must belong to the user running it (or root) and must not be writable by anyone
else, and a key file must not be readable by anyone else. Otherwise a local user who
made ``./var`` first (the default home), or loosened a mode, could hand the hub keys they
know or point it at a database of their own, and the hub would adopt them without a word.
The check is a few ``stat`` calls; no library does it for a whole directory tree.
"""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

from hub.errors import ConfigError

_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH
_OTHERS_READ = stat.S_IRGRP | stat.S_IROTH


def _owner_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def require_own(path: Path, what: str, *, private: bool = False) -> None:
    """Refuse ``path`` (a ``what``) if another user (not root) owns it, if others may
    write it (a directory: unless sticky), or, with ``private``, if others may read it."""
    info = path.stat()
    me = os.geteuid()
    if info.st_uid not in (me, 0):
        raise ConfigError(
            f"{what} {path} belongs to {_owner_name(info.st_uid)}, not to "
            f"{_owner_name(me)} who runs this command: run it as that user (sudo -u "
            f"{_owner_name(info.st_uid)} env EVI_HOME=… evi …), or, if you did not make "
            "it, do not use it"
        )
    mode = stat.S_IMODE(info.st_mode)
    sticky = stat.S_ISDIR(info.st_mode) and mode & stat.S_ISVTX
    if mode & _OTHERS_WRITE and not sticky:
        raise ConfigError(
            f"{what} {path} may be written by other users (mode {mode:04o}); make it its "
            f"owner's alone: chmod go-w {path}"
        )
    if private and mode & _OTHERS_READ:
        raise ConfigError(
            f"{what} {path} may be read by other users (mode {mode:04o}); make it its "
            f"owner's alone: chmod 600 {path}"
        )
