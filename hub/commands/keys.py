"""`evi keys …`: where the hub's keys come from, and rotating an encryption key.

No command prints a key. `list` shows each key's source and fingerprint (a keyed hash of
the key, which reveals nothing about it); `rotate` replaces an encryption key and keeps the
old one under `keys/retired/` for the backups made before (see :mod:`hub.key_rotation`).
"""

from __future__ import annotations

import typer

from hub.commands.common import area_app, hub_from, info, print_json
from hub.errors import InputError
from hub.key_rotation import NOT_ROTATED, rotatable_source, rotate_key, values_to_rewrite
from hub.keys import KEY_NAMES, PROTECTS, env_var_for, key_sources
from hub.ledger.service import ACTOR_HELP, cli_actor

keys_app = area_app(
    help="The hub's keys: where each comes from; rotate an encryption key.",
    no_args_is_help=True,
)


@keys_app.command("list")
def list_(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array (stable fields)."),
) -> None:
    """Show each key: what it protects, where it comes from, its fingerprint. Never a key."""
    hub = hub_from(ctx)
    keys = hub.keys  # checks every key against the database first
    rows = []
    for name, source in key_sources(hub.settings).items():
        rows.append(
            {
                "name": name,
                "protects": PROTECTS[name],
                "source": env_var_for(name) if source.from_env is not None else str(source.path),
                "fingerprint": keys.fingerprint(name),
                "rotatable": name not in NOT_ROTATED,
            }
        )
    if as_json:
        print_json(rows)
        return
    width = max(len(n) for n in KEY_NAMES)
    for row in rows:
        rotation = "rotatable" if row["rotatable"] else "not rotated"
        typer.echo(f"{row['name']:<{width}}  {row['fingerprint']}  {rotation:<11}  {row['source']}")
        typer.echo(f"{'':<{width}}  protects {row['protects']}")


@keys_app.command("rotate")
def rotate(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="pnr-encryption or connector-secrets."),
    yes: bool = typer.Option(
        False, "--yes", help="Really rotate (without it: only say what would be rewritten)."
    ),
    actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
) -> None:
    """Replace an encryption key: every value it protects is encrypted again with a new key
    in one transaction, and the old key is kept under `keys/retired/` for older backups.
    Stop `evi web serve`, `evi worker` and the sync timer first."""
    who = cli_actor(actor)
    hub = hub_from(ctx)
    source = rotatable_source(hub, name)
    if not yes:
        count = values_to_rewrite(hub, name)
        raise InputError(
            f"rotating '{name}' would encrypt {count} stored values again with a new key; "
            "stop `evi web serve`, `evi worker` and the sync timer, back up the database, "
            "then run again with --yes"
        )
    done = rotate_key(hub, name, actor=who)
    info(
        f"rotated '{name}': {done.rewritten} stored values encrypted again; the new key is in "
        f"{source.path} (fingerprint {done.fingerprint}). The old key is in {done.retired}: "
        "keep it with the backups made before now, and destroy it when they expire. The "
        "rotation is in the transfer log"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
