"""Fixtures of the sync tests: a demo home with small in-process sandbox authorities."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_support import setup_demo

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
