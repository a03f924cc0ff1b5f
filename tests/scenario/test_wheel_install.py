"""A municipality's IT department installs the built wheel and runs `evi` anywhere."""

from __future__ import annotations

from pathlib import Path

from hub import __version__


def test_built_wheel_runs_version_and_db_upgrade_in_an_empty_directory(
    wheel_venv: Path, run_in
) -> None:
    evi = str(wheel_venv / "bin" / "evi")
    version = run_in(evi, "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"evi-hub {__version__}"

    first = run_in(evi, "db", "upgrade")
    assert first.returncode == 0, first.stderr
    assert "upgraded from empty" in first.stderr
    again = run_in(evi, "db", "upgrade")
    assert again.returncode == 0, again.stderr
    assert "already at revision" in again.stderr


def test_wheel_carries_the_shipped_config_and_mappings(wheel_venv: Path, run_in) -> None:
    python = str(wheel_venv / "bin" / "python")
    result = run_in(
        python,
        "-c",
        "from hub.resources import bundled_path as b;"
        "print(b('config') / 'evi.toml', b('mappings'), sep='\\n')",
    )
    assert result.returncode == 0, result.stderr
    config, mappings = result.stdout.split()
    assert "site-packages/hub/_bundled/config/evi.toml" in config
    assert Path(config).is_file()
    assert "site-packages/hub/_bundled/mappings" in mappings


def test_evi_demo_from_the_wheel_runs_twice_in_an_empty_directory(wheel_venv: Path, run_in) -> None:
    evi = str(wheel_venv / "bin" / "evi")
    first = run_in(evi, "demo")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "caseload registered for 500 people" in first.stdout
    assert "ledger verified" in first.stdout
    assert "What to try next" in first.stdout
    second = run_in(evi, "demo")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "caseload already registered" in second.stdout
    assert "a night passes" in second.stdout
    assert "ledger verified" in second.stdout
    # the second night found the new records the authorities made
    table = second.stdout.split("connector  status", 1)[1].splitlines()[1:5]
    assert all(int(line.split()[2]) > 0 for line in table), table
