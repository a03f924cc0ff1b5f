"""What every command shares: the open hub, output helpers.

:mod:`hub.context` (the database, the ORM tables, the key ring) is imported when a command
first asks for the hub, not with this module: a command that never opens the hub, such as
``evi config show``, then starts without them.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

import typer

if TYPE_CHECKING:
    from hub.context import Hub

HELP_MARKUP: Final = "markdown"
"""How `--help` reads docstrings and help texts: as Markdown, so a paragraph wrapped in the
source is one paragraph on the terminal (Typer's ``"rich"`` mode keeps every line break of
every paragraph after the first, and the terminal then wraps those lines again)."""


def area_app(**options: Any) -> typer.Typer:
    """The Typer app of one command area (`evi consent`, `evi log`, …)."""
    return typer.Typer(rich_markup_mode=HELP_MARKUP, **options)


def hub_from(ctx: typer.Context) -> Hub:
    """The hub for this invocation, opened on first use and closed when the command ends."""
    from hub.context import open_hub

    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    root.obj = obj
    if "hub" not in obj:
        hub = open_hub()
        obj["hub"] = hub
        root.call_on_close(hub.close)
    hub_obj: Hub = obj["hub"]
    return hub_obj


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def info(message: str) -> None:
    """A progress or status line for people, on stderr so stdout stays parseable."""
    typer.echo(message, err=True)


@contextmanager
def whole_file(path: Path) -> Iterator[TextIO]:
    """Write ``path`` whole or not at all (UTF-8 text, mode 0600).

    The text goes to a new file beside ``path`` that replaces it in one step when the
    block ends without an error; on an error it is removed and whatever ``path`` held
    before is untouched. So an export that fails half-way (a wrong ``$EVI_HOME``, a full
    disk, Ctrl-C) never leaves a truncated file, nor destroys yesterday's export of the
    same name. The standard library's ``tempfile`` and ``os.replace`` do the work; the
    packages made for this (``atomicwrites``) are no longer maintained.
    """
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with open(fd, "w", encoding="utf-8") as out:
            yield out
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
