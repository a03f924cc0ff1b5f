"""The keys, the configuration and the home the hub trusts must be its own user's and
not writable by others (key files not readable either), as ssh's StrictModes asks: a
local user who made ./var first, or loosened a mode, cannot hand the hub keys they know
or a database of their own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NOBODY = 65534


@pytest.fixture
def home(cli, evi_home: Path) -> Path:
    assert cli("db", "upgrade").code == 0
    return evi_home


def test_a_key_file_others_may_read_is_refused(cli, home: Path) -> None:
    key = home / "keys" / "pseudonym.key"
    key.chmod(0o640)
    result = cli("keys", "list")
    assert result.code == 2
    assert f"key file {key} may be read by other users (mode 0640)" in result.err
    assert f"chmod 600 {key}" in result.err
    key.chmod(0o600)
    assert cli("keys", "list").code == 0


def test_a_key_directory_others_may_write_is_refused(cli, home: Path) -> None:
    (home / "keys").chmod(0o777)
    result = cli("keys", "list")
    assert result.code == 2 and "may be written by other users (mode 0777)" in result.err


def test_a_configuration_file_others_may_write_is_refused(cli, home: Path) -> None:
    config = home / "evi.toml"
    config.write_text("[sync]\nmax_attempts = 3\n")
    config.chmod(0o666)
    result = cli("config", "show")
    assert result.code == 2
    assert f"the configuration file {config} may be written by other users" in result.err
    config.chmod(0o644)  # readable is fine: it holds no key
    assert cli("config", "show").code == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_home_made_by_another_user_is_refused(cli, tmp_path: Path, monkeypatch) -> None:
    # someone else made ./var (the default home) first, with keys they know
    planted = tmp_path / "var"
    planted.mkdir()
    os.chown(planted, NOBODY, NOBODY)
    monkeypatch.setenv("EVI_HOME", str(planted))
    result = cli("db", "upgrade")
    assert result.code == 2
    assert f"EVI_HOME {planted} belongs to nobody, not to root" in result.err
    assert not (planted / "keys").exists()  # nothing adopted, nothing made
