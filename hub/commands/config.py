"""`evi config show`: the effective settings, secrets masked."""

from __future__ import annotations

import tomli_w
import typer

from hub.commands.common import area_app, print_json
from hub.settings import get_settings, masked_dump

config_app = area_app(help="Inspect the effective configuration.", no_args_is_help=True)


def _drop_none(data: object) -> object:
    if isinstance(data, dict):
        return {k: _drop_none(v) for k, v in data.items() if v is not None}
    return data


@config_app.command("show")
def show(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of TOML.")) -> None:
    """Print the effective settings (file, user file and EVI_* environment combined)."""
    data = masked_dump(get_settings())
    if as_json:
        print_json(data)
    else:
        typer.echo(tomli_w.dumps(_drop_none(data)))  # type: ignore[arg-type]


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
