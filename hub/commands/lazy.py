"""The root command group of `evi`: each area's module is imported when it is used.

Every area (`db`, `consent`, `log`, `sync`, …) imports its own services at the top of its
module, and together they cost a good part of a second at each start: `evi sync` has no
use for the consent exports and `evi connectors list` none for the sync job. So the root
group knows only which module registers which top-level command, and imports a module the
first time one of its commands is looked up. Listing the commands (``evi --help``, a
mistyped command's suggestions) looks every one up, and so imports them all.

This is Click's documented way of loading subcommands lazily (override ``list_commands``
and ``get_command`` of the group); Typer has no switch for it, so the group is a Typer
group given to ``typer.Typer(cls=...)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import typer
import typer.main
from typer.core import TyperGroup

if TYPE_CHECKING:
    # The Click classes Typer's groups are written against (Typer vendors Click).
    from typer._click import Command, Context


class LazyCommandGroup(TyperGroup):
    """A Typer group whose commands come from ``modules``: command name -> module name.

    Each module has ``register(app)``, which adds its commands to a Typer app; the
    commands are converted exactly as if they had been added to the root app.
    """

    modules: ClassVar[Mapping[str, str]] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._loaded: set[str] = set()

    def list_commands(self, ctx: Context) -> list[str]:
        return list(dict.fromkeys([*self.modules, *self.commands]))

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name in self.modules:
            self._load(self.modules[cmd_name])
        return self.commands.get(cmd_name)

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        if args and args[0] not in self.modules:
            # A mistyped command: Typer suggests close matches from the loaded commands.
            for module in self.modules.values():
                self._load(module)
        return super().resolve_command(ctx, args)

    def _load(self, module: str) -> None:
        if module in self._loaded:
            return
        area = typer.Typer(rich_markup_mode=self.rich_markup_mode)
        area.callback()(_area)  # a callback makes Typer build a group even for one command
        importlib.import_module(module).register(area)
        group = typer.main.get_command(area)
        assert isinstance(group, TyperGroup)
        self.commands.update(group.commands)
        self._loaded.add(module)


def _area() -> None:
    """Only there so the area's commands convert as a group; never invoked."""
