"""`evi --version`, `evi db upgrade`, `evi config show`: clear lines, right exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub import __version__


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


def test_config_show_masks_secrets(cli, evi_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVI_DATABASE_URL", "postgresql+psycopg://evi:hemligt@db.example/evi")
    monkeypatch.setenv("EVI_KEYS__PSEUDONYM", "c2VjcmV0LWtleS12YWx1ZS10aGF0LWlzLTMyLWJ5dGU=")
    result = cli("config", "show", "--json")
    assert result.code == 0
    assert "hemligt" not in result.out
    assert "c2VjcmV0" not in result.out
    assert "db.example" in result.out


def test_unknown_command_is_a_usage_error(cli, evi_home: Path) -> None:
    result = cli("frobnicate")
    assert result.code == 2
    assert "No such command" in result.err
