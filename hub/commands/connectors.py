"""`evi connectors …`: list, inspect, configure, enable, disable and check connectors.

Secrets given with ``--set`` are encrypted before they are stored and never printed;
``--secret-from-env KEY=VAR`` reads one from an environment variable instead, which keeps it
out of the shell history and the process list.
"""

from __future__ import annotations

import os

import typer

from hub.commands.common import area_app, hub_from, info, print_json
from hub.connector import service
from hub.connector.options import parse_assignments
from hub.context import Hub
from hub.errors import InputError
from hub.ledger.service import ACTOR_HELP, cli_actor
from hub.text.terminal import shown

connectors_app = area_app(help="Install-time administration of connectors.", no_args_is_help=True)


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


@connectors_app.command("list")
def list_(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array (stable fields)."),
) -> None:
    """Show every installed connector: authority, version, enabled, last sync and status."""
    hub = hub_from(ctx)
    statuses = service.list_connectors(hub)
    warnings = service.certificate_warnings(hub, statuses)
    if as_json:
        print_json([s.as_json() for s in statuses])
        _warn(warnings)
        return
    rows = [("NAME", "AUTHORITY", "VERSION", "ENABLED", "LAST SYNC", "STATUS")]
    for s in statuses:
        enabled = "paused" if s.enabled and s.paused else _yes_no(s.enabled)
        last = s.last_sync.strftime("%Y-%m-%d %H:%M UTC") if s.last_sync else "never"
        rows.append(
            (s.name, shown(s.authority), shown(s.version), enabled, last, shown(s.status or "-"))
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    _warn(warnings)


def _warn(warnings: list[str]) -> None:
    for line in warnings:
        info(f"warning: {line}")


@connectors_app.command("spec")
def spec(ctx: typer.Context, name: str = typer.Argument(..., help="Connector name.")) -> None:
    """Print the JSON Schema of a connector's options (secrets are marked writeOnly)."""
    print_json(service.connector_spec(hub_from(ctx), name))


@connectors_app.command("show")
def show(ctx: typer.Context, name: str = typer.Argument(..., help="Connector name.")) -> None:
    """Print a connector's stored options (secrets masked) and its state as JSON."""
    hub = hub_from(ctx)
    status = service.connector_status(hub, name).as_json()
    status["options"] = service.stored_options(hub, name)
    print_json(status)


@connectors_app.command("configure")
def configure(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Connector name."),
    set_: list[str] = typer.Option([], "--set", help="KEY=VALUE; repeat for several options."),
    secret_from_env: list[str] = typer.Option(
        [], "--secret-from-env", help="KEY=ENV_VAR: read the value from an environment variable."
    ),
    unset: list[str] = typer.Option([], "--unset", help="KEY: remove a stored option."),
    actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
) -> None:
    """Set a connector's options; secrets are stored encrypted and never shown."""
    values: dict[str, object] = dict(parse_assignments(set_))
    for key, variable in parse_assignments(secret_from_env, "--secret-from-env").items():
        if variable not in os.environ:  # not named: it may be the secret, typed by mistake
            raise InputError(
                f"--secret-from-env {key}: the environment variable given is not set; "
                "export it first (its name is not repeated, in case the secret was typed there)"
            )
        values[key] = os.environ[variable]
    if not values and not unset:
        raise InputError("nothing to configure; give --set KEY=VALUE or --unset KEY")
    hub = hub_from(ctx)
    typed = sorted(service.secret_options(hub, name) & set(parse_assignments(set_)))
    before = service.stored_options(hub, name).get("base_url")
    shown = service.configure(hub, name, values, unset=unset, actor=cli_actor(actor))
    print_json(shown)
    info(f"{name}: options saved; run `evi connectors check {name}` to try them")
    for key in typed:  # stored all the same: refusing would not take it out of the history
        info(
            f"warning: {name} option '{key}' is a secret given on the command line, where "
            "other local users see it in the process list and the shell keeps it in its "
            f"history; next time give it with `--secret-from-env {key}=ENV_VAR`"
        )
    if before and shown.get("base_url") != before:
        _warn_moved(hub, name, str(before))


def _warn_moved(hub: Hub, name: str, before: str) -> None:
    """A new address with the old one's cursor and registrations still held: say how to
    start afresh there, should it be another system (the hub cannot tell a new host name
    of the same system from a test endpoint replaced by production)."""
    held = service.forget_authority(hub, name, actor="", really=False)
    if not (held.registrations or held.cursor):
        return
    info(
        f"warning: {name} now points at another address (was {before}); the hub still holds "
        f"{held} made at the old one. If this is another system (a test endpoint replaced "
        f"by production), run `evi connectors forget {name}` so the next sync registers "
        "everyone there and reads from the start"
    )


@connectors_app.command("enable")
def enable(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Connector name."),
    actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
) -> None:
    """Include a connector in sync runs (also lifts a pause after repeated failures)."""
    service.set_enabled(hub_from(ctx), name, True, actor=cli_actor(actor))
    info(f"{name}: enabled")


@connectors_app.command("disable")
def disable(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Connector name."),
    actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
) -> None:
    """Leave a connector out of sync runs; its options and history are kept."""
    service.set_enabled(hub_from(ctx), name, False, actor=cli_actor(actor))
    info(f"{name}: disabled")


@connectors_app.command("check")
def check(ctx: typer.Context, name: str = typer.Argument(..., help="Connector name.")) -> None:
    """Reach the authority with the stored options; exit non-zero with the reason if not.

    Exit codes: 0 ok, 2 configuration (options, credentials, certificate, URL),
    75 the authority is unreachable or busy (try later), 1 the authority refused.
    """
    hub = hub_from(ctx)
    status = service.check_connector(hub, name, retry=service.CHECK_RETRY)
    typer.echo(f"{name}: ok — {status.authority} answered and accepted our credentials")
    _warn(service.certificate_warnings(hub, [status], enabled_only=False))


@connectors_app.command("forget")
def forget(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Connector name."),
    yes: bool = typer.Option(False, "--yes", help="Really forget (without it: only count)."),
    actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
) -> None:
    """After pointing NAME at a new address (a test endpoint replaced by production): forget
    its cursor and whom the old address follows, so the next sync registers every consented
    person again at the new one and reads from the start. Nothing is sent to the old
    address. Logged."""
    hub = hub_from(ctx)
    done = service.forget_authority(hub, name, actor=cli_actor(actor), really=yes)
    if not yes:
        raise InputError(
            f"{name}: would forget {done}; the next sync registers the consented people again "
            "and reads from the start; rerun with --yes to forget them"
        )
    info(f"{name}: forgot {done}; the next `evi sync` registers and reads anew")


@connectors_app.command("unmapped")
def unmapped(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Connector name."),
    as_json: bool = typer.Option(False, "--json", help="The codes as a JSON array."),
) -> None:
    """The authority's codes its mapping file does not know, as stored records carry them:
    field, code, how many records and when the newest was stored; the most frequent first."""
    from hub.connector.unmapped import unmapped_codes

    codes = unmapped_codes(hub_from(ctx), name)
    if as_json:
        print_json(codes)
        return
    if not codes:
        info(f"{name}: every stored record's codes are in its mapping file")
        return
    typer.echo(f"  {'records':>7}  {'field':<24} {'code':<24} last stored (UTC)")
    for c in codes:  # the authority's text: escaped where a terminal would act on it
        field, code = shown(c["field"]), shown(c["code"])
        typer.echo(f"  {c['records']:>7}  {field:<24} {code:<24} {c['last_stored'][:19]}Z")
    info(f"add them to the mapping file (docs/connectors.md#mappings); {len(codes)} code(s)")


def register(app: typer.Typer) -> None:
    app.add_typer(connectors_app, name="connectors")
