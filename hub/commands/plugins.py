"""`evi plugins list`: every loaded plugin, where it comes from, its version and hooks."""

from __future__ import annotations

from typing import Any

import typer

from hub import __version__
from hub.commands.common import area_app, print_json
from hub.plugins import get_plugin_manager, plugin_distribution

plugins_app = area_app(help="Inspect the loaded plugins.", no_args_is_help=True)


def describe_plugins() -> list[dict[str, Any]]:
    """Each registered plugin: name, source (built-in or its distribution), version, hooks."""
    pm = get_plugin_manager()
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:  # blocked
            continue
        dist = plugin_distribution(pm, name)
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        rows.append(
            {
                "name": name,
                "source": str(dist.metadata["Name"]) if dist else "built-in",
                "version": dist.version if dist else __version__,
                "hooks": hooks,
            }
        )
    return rows


@plugins_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show each loaded plugin, its version and the hooks it implements."""
    rows = describe_plugins()
    if as_json:
        print_json(rows)
        return
    for row in rows:
        typer.echo(f"{row['name']}  {row['source']} {row['version']}  {', '.join(row['hooks'])}")


def register(app: typer.Typer) -> None:
    app.add_typer(plugins_app, name="plugins")
