"""Scenario fixtures: a wheel built from this checkout, installed in a fresh virtualenv."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="session")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with only the built wheel (and its declared dependencies) installed."""
    work = tmp_path_factory.mktemp("wheel")
    dist = work / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        check=True,
    )
    wheels = list(dist.glob("evi_hub-*.whl"))
    assert len(wheels) == 1, wheels
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    subprocess.run(
        [str(env_dir / "bin" / "pip"), "install", "-q", str(wheels[0])],
        check=True,
    )
    yield env_dir


def clean_env(home: Path | None = None) -> dict[str, str]:
    """The environment minus every EVI_* variable, optionally with EVI_HOME set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVI_")}
    if home is not None:
        env["EVI_HOME"] = str(home)
    return env


@pytest.fixture
def run_in(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a command in an empty directory with no EVI_* settings."""
    empty = tmp_path / "empty"
    empty.mkdir()

    def run(*cmd: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(cmd),
            cwd=empty,
            env=env or clean_env(),
            capture_output=True,
            text=True,
            timeout=600,
        )

    return run
