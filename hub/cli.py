"""The `evi` command. Sub-commands live in :mod:`hub.commands`, one module per area.

Errors a user can cause (:class:`hub.errors.EviError`) print one line and exit with the
error's code; anything else prints one line too, and the traceback only with ``--debug``.
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer

from hub import __version__
from hub.errors import EviError

COMMAND_MODULES = (
    "db",
    "config",
    "plugins",
    "connectors",
    "sandbox",
    "consent",
    "log",
    "sync",
    "transfers",
    "demo",
)


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
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    ctx.obj = {"debug": debug}


def build_app() -> typer.Typer:
    """The `evi` Typer app with every area's commands registered."""
    app = typer.Typer(
        name="evi",
        help="EVI hub: consent-gated exchange between the authorities of an 'En väg in' team.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    app.callback()(_root)
    for name in COMMAND_MODULES:
        importlib.import_module(f"hub.commands.{name}").register(app)
    return app


def run(argv: list[str]) -> int:
    """Run one `evi` invocation and return its exit code (the testable core of :func:`main`)."""
    debug = "--debug" in argv
    try:
        result = build_app()(args=argv, prog_name="evi", standalone_mode=False)
    except EviError as exc:
        if debug:
            raise
        typer.echo(f"error: {exc.message}", err=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:  # usage errors: Typer's own (vendored click) classes
        exc.show()  # type: ignore[attr-defined]
        return int(getattr(exc, "exit_code", 2))
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        return 130
    except Exception as exc:
        if debug:
            raise
        typer.echo(
            f"error: internal error ({type(exc).__name__}); rerun with --debug for details "
            "and report it",
            err=True,
        )
        return 1
    return result if isinstance(result, int) else 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(run(sys.argv[1:]))
