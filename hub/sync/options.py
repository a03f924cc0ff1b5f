"""What one `evi sync` run is asked to do, and how each connector's step is guarded."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx

from hub.connector.errors import ConnectorConfigError
from hub.connector.retry import RetryPolicy
from hub.errors import ConfigError, EviError, StorageError
from hub.sync.delivery import DEFAULT_LEASE
from hub.sync.lock import LockLostError
from hub.sync.report import CONFIG_ERROR, FAILED, ConnectorReport

log = logging.getLogger(__name__)

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
    keep_locks: Callable[[], None] | None = None
    """Renews the run's sync locks when due (:meth:`hub.sync.lock.SyncLocks.keep`); the
    run's own loops call it between their writes."""


def guarded(entry: ConnectorReport, step: Callable[..., None], *args: Any) -> None:
    """Run one connector's step; its failure is reported on its line and stops no one else.

    Any exception counts, not only a connector's own errors: a fault in one connector's
    code (or a hub bug its data runs into) fails that connector, and the others, the
    deliveries and the run's bookkeeping go on. Such an exception is named by its type
    only: its text may quote the data that caused it. A lost sync lock is the exception:
    another run holds the lock now, so it stops the whole run.
    """
    started = time.monotonic()
    try:
        step(*args)
    except LockLostError:
        raise  # another run holds the lock now: this run stops, not just this connector
    except (ConnectorConfigError, ConfigError) as exc:
        entry.status, entry.error = CONFIG_ERROR, exc.message
    except StorageError as exc:  # the hub's database, not the authority: see _finish_runs
        entry.status, entry.error, entry.database_failed = FAILED, exc.message, True
    except EviError as exc:  # a connector's or the hub's own message, free of personal data
        entry.status, entry.error = FAILED, exc.message
    except Exception as exc:
        entry.status, entry.error = FAILED, unexpected(entry.connector, exc)
    finally:
        entry.duration_s += time.monotonic() - started


def unexpected(connector: str, exc: BaseException) -> str:
    """The report's line for an exception no one expected: its type, never its text.

    The traceback goes to the debug log only (``evi --debug``): its text may quote a
    record, which the report and a nightly log must not. An :class:`EviError` (the
    database away in a step the connectors share, say) is no fault of theirs or the
    hub's: its own message, free of personal data, says what happened."""
    if isinstance(exc, EviError):
        return f"{connector}: stopped: {exc.message}"
    log.error("%s: stopped by an unexpected %s", connector, type(exc).__name__)
    log.debug("%s: where the %s was raised", connector, type(exc).__name__, exc_info=exc)
    return (
        f"{connector}: stopped by an unexpected {type(exc).__name__} (a fault in the connector "
        "or the hub); what was stored before it stays, and the next run starts from there"
    )
