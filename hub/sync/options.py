"""What one `evi sync` run is asked to do, and how each connector's step is guarded."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx

from hub.connector.errors import ConnectorConfigError, ConnectorError
from hub.connector.retry import RetryPolicy
from hub.sync.delivery import DEFAULT_LEASE
from hub.sync.report import CONFIG_ERROR, FAILED, ConnectorReport

ACTOR = "evi-sync"
Progress = Callable[[str, int], None]


@dataclass
class SyncOptions:
    connectors: list[str] | None = None
    dry_run: bool = False
    since: str | None = None
    from_start: bool = False
    deliver: bool = True
    transports: Mapping[str, httpx.BaseTransport] = field(default_factory=dict)
    progress: Progress | None = None
    lease: timedelta = DEFAULT_LEASE
    retry: RetryPolicy | None = None


def guarded(entry: ConnectorReport, step: Callable[..., None], *args: Any) -> None:
    """Run one connector's step; its failure is reported on its line and stops no one else."""
    started = time.monotonic()
    try:
        step(*args)
    except ConnectorConfigError as exc:
        entry.status, entry.error = CONFIG_ERROR, exc.message
    except ConnectorError as exc:
        entry.status, entry.error = FAILED, exc.message
    finally:
        entry.duration_s += time.monotonic() - started
