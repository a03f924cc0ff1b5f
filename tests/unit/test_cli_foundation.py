"""`evi --version`, `evi db upgrade`, `evi config show`: clear lines, right exit codes; each
command imports only its own area."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import typer.main

from hub import __version__
from hub.cli import COMMANDS


def test_version(cli, evi_home: Path) -> None:
    result = cli("--version")
    assert result.code == 0
    assert result.out.strip() == f"evi-hub {__version__}"


def test_db_upgrade_creates_database_and_keys_and_repeats_safely(cli, evi_home: Path) -> None:
    first = cli("db", "upgrade")
    assert first.code == 0, first.err
    assert "upgraded from empty" in first.err
    assert (evi_home / "evi.db").is_file()
    assert len(list((evi_home / "keys").iterdir())) == 4
    second = cli("db", "upgrade")
    assert second.code == 0
    assert "already at revision" in second.err


@pytest.mark.parametrize(
    "args",
    [
        ("stats", "--from", "2024-01-01", "--to", "2024-01-31"),
        ("connectors", "list"),
        ("sync",),
        ("log", "verify"),
        ("users", "list"),
    ],
)
def test_a_command_on_an_empty_home_says_to_upgrade_and_leaves_no_database(
    cli, evi_home: Path, args: tuple[str, ...]
) -> None:
    # A cron line with the wrong EVI_HOME used to leave an empty evi.db behind, which the
    # next look took for a database.
    result = cli(*args)
    assert result.code != 0
    assert f"there is no database at {evi_home / 'evi.db'} yet: run `evi db upgrade` first" in (
        result.err
    )
    assert not (evi_home / "evi.db").exists()
    assert cli("db", "upgrade").code == 0
    assert (evi_home / "evi.db").stat().st_mode & 0o077 == 0  # made private by the upgrade


def test_db_upgrade_with_missing_key_fails_in_one_line(cli, evi_home: Path) -> None:
    assert cli("db", "upgrade").code == 0
    (evi_home / "keys" / "pnr-encryption.key").unlink()
    result = cli("db", "upgrade")
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "key 'pnr-encryption' is missing" in result.err
    assert not (evi_home / "keys" / "pnr-encryption.key").exists()


def test_unreachable_postgres_is_one_line_without_password(
    cli, evi_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVI_DATABASE_URL", "postgresql+psycopg://evi:hemligt@127.0.0.1:1/evi")
    result = cli("db", "upgrade")
    assert result.code == 1
    assert result.err.startswith("error: cannot reach the database")
    assert result.err.count("\n") == 1
    assert "hemligt" not in result.err + result.out
    assert "Traceback" not in result.err


def test_unknown_config_key_is_named(cli, evi_home: Path) -> None:
    (evi_home / "evi.toml").write_text("[sync]\nmax_attempt = 3\n")
    result = cli("config", "show")
    assert result.code == 2
    assert "unknown setting 'sync.max_attempt'" in result.err


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("EVI_DATABSE_URL", "check its spelling"),  # before: the hub ran on its SQLite default
        ("evi_enviroment", "check its spelling"),  # read without regard to case, as the rest
        ("EVI_CONNECTORS__AF__BASE_URL", "`evi connectors configure`"),
    ],
)
def test_an_unknown_variable_in_the_environment_is_named_not_passed_over(
    cli, evi_home: Path, monkeypatch: pytest.MonkeyPatch, name: str, says: str
) -> None:
    """Before: pydantic-settings refused an unknown key under a section but passed over an
    unknown top-level one, so a misspelt EVI_DATABASE_URL left a production hub writing to
    a new SQLite file in $EVI_HOME."""
    monkeypatch.setenv(name, "postgresql+psycopg://evi@db.example/evi")
    result = cli("config", "show")
    assert result.code == 2
    assert f"unknown setting in the environment: {name}" in result.err and says in result.err
    assert "db.example" not in result.err  # a value may be a secret: never repeated
    assert not (evi_home / "evi.db").exists()


def test_the_test_suites_and_the_plugin_variables_are_no_unknown_settings() -> None:
    from hub.settings import unknown_environment

    environ = {"EVI_TEST_POSTGRES_URL": "x", "EVI_PLUGINS": "af", "EVI_SYNC__HELPERS": "0"}
    assert unknown_environment({**environ, "PATH": "/bin"}) == []


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://evi:hemligt@db.example/evi",
        # libpq also takes the password, and the client key's, as query parameters
        "postgresql+psycopg://evi@db.example/evi?password=hemligt&sslmode=require",
        "postgresql+psycopg://evi@db.example/evi?sslpassword=hemligt&PASSWORD=hemligt",
    ],
)
def test_config_show_masks_secrets(
    cli, evi_home: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("EVI_DATABASE_URL", url)
    monkeypatch.setenv("EVI_KEYS__PSEUDONYM", "c2VjcmV0LWtleS12YWx1ZS10aGF0LWlzLTMyLWJ5dGU=")
    result = cli("config", "show", "--json")
    assert result.code == 0
    assert "hemligt" not in result.out
    assert "c2VjcmV0" not in result.out
    assert "db.example" in result.out


@pytest.mark.parametrize(
    "url", ["postgres hemligt", "postgresql://evi:hemligt@[::1/evi"], ids=["no URL", "bad port"]
)
def test_a_database_url_that_is_no_url_is_shown_as_such_not_printed(
    cli, evi_home: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("EVI_DATABASE_URL", url)
    shown = cli("config", "show", "--json")
    assert shown.code == 0 and "<unparseable database URL>" in shown.out
    used = cli("db", "status")
    assert used.code == 2 and "is not a database URL" in used.err
    assert "hemligt" not in shown.out + shown.err + used.out + used.err


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg2"])
def test_a_postgresql_url_for_another_driver_says_how_to_write_it(
    cli, evi_home: Path, monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    """The URL a DBA hands out (libpq's postgresql://) means psycopg2 to SQLAlchemy, which
    EVI hub does not install: it said "PostgreSQL support is not installed"."""
    monkeypatch.setenv("EVI_DATABASE_URL", f"{scheme}://evi:hemligt@db.example/evi")
    used = cli("db", "status")
    assert used.code == 2
    assert "write the URL as postgresql+psycopg://USER@HOST:PORT/DB" in used.err
    assert "not installed" not in used.err and "hemligt" not in used.err


def test_unknown_command_is_a_usage_error(cli, evi_home: Path) -> None:
    result = cli("frobnicate")
    assert result.code == 2
    assert result.err == "error: No such command 'frobnicate' (see `evi --help`)\n"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("participants", "status", "--pnr", "199001012385"),
            "error: Missing option '--as' (see `evi participants status --help`)",
        ),
        (
            ("users", "add", "x.y", "--party", "af", "--role", "boss"),
            "error: Invalid value for '--role': 'boss' is not one of 'caseworker', "
            "'privacy_officer', 'steering_group', 'administrator' (see `evi users add --help`)",
        ),
        (
            ("log", "search", "--nosuch"),
            "error: No such option: --nosuch (see `evi log search --help`)",
        ),
        (("sync", "--connector"), "error: Option '--connector' requires an argument"),
    ],
)
def test_a_mistyped_command_line_is_one_error_line(
    cli, evi_home: Path, args: tuple[str, ...], line: str
) -> None:
    result = cli(*args)
    assert result.code == 2 and result.out == ""
    assert result.err == line + "\n"  # one line, as every other error, and what to read


def test_a_command_area_without_a_command_still_shows_its_help(cli, evi_home: Path) -> None:
    result = cli("transfers")
    assert "evi transfers [OPTIONS] COMMAND" in result.out + result.err
    assert "failed" in result.out + result.err


def test_the_command_table_names_exactly_what_each_module_registers() -> None:
    for module in set(COMMANDS.values()):
        area = typer.Typer()
        area.callback()(lambda: None)
        importlib.import_module(module).register(area)
        registered = typer.main.get_command(area).commands  # type: ignore[attr-defined]
        assert sorted(registered) == sorted(n for n, m in COMMANDS.items() if m == module)
    package = Path(importlib.import_module("hub.commands").__path__[0])
    areas = {p.stem for p in package.glob("*.py")} - {"__init__", "common", "lazy"}
    assert {m.rsplit(".", 1)[1] for m in COMMANDS.values()} == areas  # none left out


# Modules a command should not pay for unless it uses them (see hub.commands.lazy).
_NOT_NEEDED = ("alembic", "fastapi", "faker", "uvicorn", "hub.commands.consent", "hub.demo")
_PROBE = f"""
import sys
from hub.cli import run
code = run(sys.argv[1:])
print(sorted(m for m in sys.modules if m.startswith({_NOT_NEEDED!r})))
print(code)
"""


@pytest.mark.parametrize("args", [("--version",), ("connectors", "list"), ("sync",)], ids=" ".join)
def test_a_command_imports_only_its_own_area(cli, evi_home: Path, args: tuple[str, ...]) -> None:
    assert cli("db", "upgrade").code == 0
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, check=True
    )
    imported, code = probe.stdout.splitlines()[-2:]
    assert code == "0", probe.stderr
    assert imported == "[]"
