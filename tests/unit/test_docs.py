"""The documentation stays true to the code: examples parse, every command is documented."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import typer.main

from hub.cli import build_app
from hub.settings import RoutingRule

ROOT = Path(__file__).parents[2]


def _blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", path.read_text(), flags=re.S)


def test_routing_examples_in_the_sync_docs_are_valid_rules() -> None:
    blocks = _blocks(ROOT / "docs" / "sync.md", "toml")
    assert blocks
    for block in blocks:
        for rule in tomllib.loads(block)["routing"]:
            RoutingRule.model_validate(rule)


def test_every_top_level_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    command = typer.main.get_command(build_app())
    names = command.list_commands(typer.Context(command))  # type: ignore[attr-defined]
    assert "sync" in names and "consent" in names
    for name in names:
        assert f"`evi {name}" in readme, f"`evi {name}` is not documented in README.md"


def test_exit_codes_in_the_docs_match_the_report() -> None:
    from hub.sync.lock import LockLostError
    from hub.sync.report import CONFIG_ERROR, FAILED, LOCKED, ConnectorReport, SyncReport

    def code(*statuses: str) -> int:
        return SyncReport([ConnectorReport(f"c{i}", s) for i, s in enumerate(statuses)]).exit_code

    text = (ROOT / "docs" / "sync.md").read_text()
    assert (
        "| 3 | every connector asked for is being synced by another run, or another run took "
        "over this run's lock (see below) |" in text
    )
    assert LockLostError.exit_code == 3
    assert code("ok", "ok") == 0
    assert code("ok", FAILED) == 1
    assert code("ok", LOCKED) == 1
    assert code(LOCKED, LOCKED) == 3
    assert code("ok", CONFIG_ERROR) == 2
