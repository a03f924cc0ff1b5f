"""What every command shares: the open hub, output helpers."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from hub.context import Hub, open_hub


def hub_from(ctx: typer.Context) -> Hub:
    """The hub for this invocation, opened on first use and closed when the command ends."""
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
