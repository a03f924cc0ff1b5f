"""What every command shares: the open hub, output helpers.

:mod:`hub.context` (the database, the ORM tables, the key ring) is imported when a command
first asks for the hub, not with this module: a command that never opens the hub, such as
``evi config show``, then starts without them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

import typer

from hub.files import staged

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
        from hub.settings import get_settings, require_fit_for_production

        require_fit_for_production(get_settings())
        hub = open_hub()
        obj["hub"] = hub
        root.call_on_close(hub.close)
    hub_obj: Hub = obj["hub"]
    return hub_obj


def print_json(data: Any) -> None:
    """``data`` as JSON on stdout; a character in it that is not printable (an escape
    sequence in an authority's code, say) is written as a JSON escape, never raw."""
    from hub.text.terminal import shown_json

    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write(shown_json(text) + "\n")


def info(message: str) -> None:
    """A progress or status line for people, on stderr so stdout stays parseable."""
    typer.echo(message, err=True)


@contextmanager
def whole_file(path: Path) -> Iterator[TextIO]:
    """Write text to ``path`` whole or not at all, mode 0600 (see :mod:`hub.files`)."""
    with staged(path) as staging, staging.open("w", encoding="utf-8") as out:
        yield out


def party_option(text: str, option: str) -> str:
    """``text`` as a party name (a connector name or ``team``), or an error naming ``option``."""
    from pydantic import TypeAdapter, ValidationError

    from hub.errors import InputError
    from hub.model.vocab import Party

    try:
        party: str = TypeAdapter(Party).validate_python(text)
    except ValidationError:
        raise InputError(
            f"{option} {text!r}: a party is a connector name or 'team' (lowercase letters, "
            "digits, '-' or '_'), e.g. af, fk, kommun, region, team"
        ) from None
    return party


FROM_STDIN: Final = "-"
_PNR_STDIN_HELP: Final = (
    " Give '-' to type it unseen, or to read it from standard input, so that it stays out of"
    " the process list and the shell's history."
)


def pnr_option(help: str, *, required: bool = True) -> Any:
    """The ``--pnr`` option: the number as given, or (``--pnr -``) as read by
    :func:`_pnr_from_stdin`. On the command line a number is in every local user's
    process list (``ps``) and the shell's history; a DPO would rather it were not."""
    return typer.Option(
        ... if required else None,
        "--pnr",
        help=help + _PNR_STDIN_HELP,
        callback=_pnr_from_stdin,
    )


def _pnr_from_stdin(value: str | None) -> str | None:
    """``value``, or for ``-`` the number typed at a hidden prompt (a terminal) or the first
    line of standard input (a pipe)."""
    if value != FROM_STDIN:
        return value
    if sys.stdin.isatty():
        import getpass

        line = getpass.getpass("personnummer or samordningsnummer: ")
    else:
        line = sys.stdin.readline()
    if not line.strip():
        raise typer.BadParameter("'-' reads the number from standard input, which had none")
    return line.strip()
