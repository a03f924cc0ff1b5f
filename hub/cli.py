"""The `evi` command. Sub-commands live in :mod:`hub.commands`, one module per area.

An area's module is imported only when one of its commands runs (or help lists them all),
see :mod:`hub.commands.lazy`: each start of `evi` then pays for the area it uses.

Errors a user can cause (:class:`hub.errors.EviError`) print one line and exit with the
error's code; anything else prints one line too, and the traceback only with ``--debug``.
"""

from __future__ import annotations

import gc
import logging
import sys
import time

import typer

from hub import __version__
from hub.commands.common import HELP_MARKUP
from hub.commands.lazy import LazyCommandGroup
from hub.errors import EviError
from hub.text.terminal import shown

COMMANDS = {
    # top-level command -> the module whose register(app) adds it, in the order help lists
    # them (as Typer listed them when every module was registered up front: plain commands
    # first, then the groups)
    "worker": "hub.commands.sync",
    "demo": "hub.commands.demo",
    "db": "hub.commands.db",
    "config": "hub.commands.config",
    "plugins": "hub.commands.plugins",
    "connectors": "hub.commands.connectors",
    "sandbox": "hub.commands.sandbox",
    "consent": "hub.commands.consent",
    "participants": "hub.commands.participants",
    "log": "hub.commands.log",
    "sync": "hub.commands.sync",
    "transfers": "hub.commands.transfers",
    "users": "hub.commands.users",
    "keys": "hub.commands.keys",
    "web": "hub.commands.web",
    "stats": "hub.commands.stats",
}


class EviCommands(LazyCommandGroup):
    """The root group of `evi`: the areas in :data:`COMMANDS`, each loaded on first use."""

    modules = COMMANDS


def _version(value: bool) -> None:
    if value:
        typer.echo(f"evi-hub {__version__}")
        raise typer.Exit()


def _root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details."),
) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(log_formatter())
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING,
        handlers=[handler],
        force=True,
    )
    ctx.obj = {"debug": debug}


def log_formatter() -> logging.Formatter:
    """Log lines as ``2026-12-05T09:43:00Z LEVEL logger: message``: UTC with its ``Z``, so
    lines from hosts in any time zone, and from both sides of a change to summer time,
    sort and compare (the web's audit log is one of them)."""
    formatter = logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%Y-%m-%dT%H:%M:%SZ"
    )
    formatter.converter = time.gmtime
    return formatter


def build_app() -> typer.Typer:
    """The `evi` Typer app; every area's commands are loaded when first looked up."""
    app = typer.Typer(
        name="evi",
        cls=EviCommands,
        help="EVI hub: consent-gated exchange between the authorities of an 'En väg in' team.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode=HELP_MARKUP,
    )
    app.callback()(_root)
    return app


def run(argv: list[str]) -> int:
    """Run one `evi` invocation and return its exit code (the testable core of :func:`main`)."""
    debug = "--debug" in argv
    try:
        result = build_app()(args=argv, prog_name="evi", standalone_mode=False)
    except EviError as exc:
        if debug:
            raise
        # An authority's words may be in it (a record id, an answer): nothing acts on a terminal
        typer.echo(f"error: {shown(exc.message)}", err=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:  # usage errors: Typer's own (vendored click) classes
        _show_usage_error(exc)
        return int(getattr(exc, "exit_code", 2))
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        return 130
    except Exception as exc:
        if debug:
            raise
        # only now: every start imports this module
        from hub.store.db import database_away, privilege_problem

        refused = privilege_problem(exc)
        if refused is None:
            refused = database_away(exc)  # the database away outside a unit of work
        if refused is not None:
            typer.echo(f"error: {refused}", err=True)
            return 1
        typer.echo(
            f"error: internal error ({type(exc).__name__}); rerun with --debug for details "
            "and report it",
            err=True,
        )
        return 1
    return result if isinstance(result, int) else 0


def _show_usage_error(exc: typer.TyperException) -> None:
    """A mistyped command line as every other error is shown: one ``error:`` line, here
    with where to find the command's options (Click's own is three lines: usage, a hint
    and ``Error: …``). A command given without what it needs still prints its help."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        exc.show()  # type: ignore[attr-defined]
        return
    message = exc.format_message().replace("Value error, ", "").rstrip(".")
    ctx = getattr(exc, "ctx", None)
    hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    typer.echo(f"error: {message}{hint}", err=True)


def main() -> None:
    """Console-script entry point."""
    code = run(sys.argv[1:])
    _no_collection_at_exit()
    sys.exit(code)


def _no_collection_at_exit() -> None:
    """Spare the interpreter's shutdown its garbage-collection passes.

    When `evi` ends, CPython's finalisation runs the cyclic garbage collector over every
    object still alive (the loaded libraries, the sync's caches) only to free memory the
    operating system takes back anyway; measured: about 0.35 s of `evi connectors list`
    and 0.8 s after a 100,000-record `evi sync` had printed its report. The command has
    finished by now and closed what it opened (the database's connections close when the
    hub does), so moving the survivors out of the collector's sight (:func:`gc.freeze`)
    loses nothing; reference counting still finalises what it always did.
    """
    gc.freeze()
