"""`--help` of every `evi` command: each paragraph reads as one paragraph, nothing written in
a help text goes missing on the way to the terminal, and `evi sync` names its exit codes."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main

from hub.cli import build_app


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    if hasattr(command, "list_commands"):
        for name in command.list_commands(None):
            sub = command.get_command(None, name)
            if sub is not None:
                yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(build_app())))


def _plain(text: str) -> str:
    """Words as the terminal shows them: Markdown code spans without their backticks."""
    return " ".join(text.replace("`", "").split())


def _shown(output: str) -> str:
    return " ".join(output.replace("│", " ").split())


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_help_paragraph_and_option_text_is_shown_whole(
    cli: Any, monkeypatch: pytest.MonkeyPatch, path: tuple[str, ...], command: Any
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping: a paragraph is then one line
    result = cli(*path, "--help")
    assert result.code == 0, result.err
    lines = [_shown(line) for line in result.out.splitlines()]
    for paragraph in inspect.cleandoc(command.help or "").split("\n\n"):
        if paragraph.strip():
            assert _plain(paragraph) in lines, f"not shown as one paragraph: {paragraph!r}"
    shown = _shown(result.out)
    for param in getattr(command, "params", []):
        text = getattr(param, "help", None)
        if text:
            assert _plain(text) in shown, f"{param.name}: help text not shown whole: {text!r}"


def test_sync_help_names_its_exit_codes(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "1000")
    result = cli("sync", "--help")
    assert result.code == 0
    assert re.search(
        r"Exit codes: 0 ok, 1 partial failure, 2 configuration error, "
        r"3 another sync holds the lock",
        _shown(result.out),
    )


def test_every_command_the_demo_suggests_exists() -> None:
    from hub.demo.run import NEXT_STEPS

    known = {path for path, _ in COMMANDS}
    suggested = [
        line.split() for line in NEXT_STEPS.splitlines() if line.strip().startswith("evi ")
    ]
    assert len(suggested) > 10
    for words in suggested:
        path = tuple(w for w in words[1:3] if not w.startswith("-") and w.islower())
        while path and path not in known:
            path = path[:-1]  # "evi users add anna": the command is "users add"
        assert path and (path in known), " ".join(words)
        assert len(path) == 2 or not hasattr(dict(COMMANDS)[path], "list_commands"), words
