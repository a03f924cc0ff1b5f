"""Fixtures of the unit tests: a demo hub with small in-process sandbox authorities (the
sync tests), a demo home set up for the CLI, and `evi web serve` without serving."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sync_support import POPULATION, SEED, setup_demo

from hub.context import Hub, open_hub
from hub.demo.sandboxes import SandboxTarget
from hub.settings import get_settings


@pytest.fixture
def demo(db_url: str, evi_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    monkeypatch.setenv("EVI_DATABASE_URL", db_url)
    get_settings.cache_clear()
    hub = open_hub()
    yield hub
    hub.close()


@pytest.fixture
def targets(demo: Hub) -> dict[str, SandboxTarget]:
    return setup_demo(demo)


@pytest.fixture
def demo_home(cli: Any, evi_home: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo's small caseload and connectors set up (`evi demo --setup-only`), no night
    run yet."""
    monkeypatch.setenv("EVI_DATABASE_URL", db_url)
    get_settings.cache_clear()
    result = cli("demo", "--setup-only", "--seed", str(SEED), "--population", str(POPULATION))
    assert result.code == 0, result.err
    return evi_home


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """`evi web serve` without serving: the uvicorn configurations it would run."""
    import uvicorn

    configs: list[uvicorn.Config] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: configs.append(self.config))
    access = logging.getLogger("uvicorn.access")
    before = list(access.filters)
    try:
        yield configs
    finally:
        access.filters[:] = before  # serve adds its access-log filter
