"""What a sync run did, per connector: printed at the end and stored for `evi sync history`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from hub.text.terminal import shown

COUNTERS = (
    "pulled",
    "stored",
    "refused",
    "invalid",
    "unmapped",
    "queued",
    "delivered",
    "denied",
    "retried",
    "dead_lettered",
)

# Outcome of one connector in one run.
OK = "ok"
FAILED = "failed"
PAUSED = "paused"
LOCKED = "locked"
PARTIAL = "partial"  # ran, but refused records that violate the authority's own schema
CONFIG_ERROR = "config_error"
DRY_RUN = "dry_run"
INTERRUPTED = "interrupted"  # a run's row that never recorded its end (only in sync_run)


@dataclass
class ConnectorReport:
    connector: str
    status: str = OK
    pulled: int = 0
    stored: int = 0
    refused: int = 0
    invalid: int = 0
    unmapped: int = 0
    queued: int = 0
    delivered: int = 0
    denied: int = 0
    retried: int = 0
    dead_lettered: int = 0
    subscribed: int = 0
    cancelled: int = 0
    duration_s: float = 0.0
    error: str | None = None
    decisions: dict[str, int] = field(default_factory=dict)
    # failed on the hub's own database (away, full, locked), not on the authority: the run
    # is failed all the same, but does not count towards pausing the connector
    database_failed: bool = False

    def counts(self) -> dict[str, int]:
        return {name: int(getattr(self, name)) for name in COUNTERS}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SyncReport:
    connectors: list[ConnectorReport] = field(default_factory=list)
    dry_run: bool = False

    def get(self, name: str) -> ConnectorReport:
        for report in self.connectors:
            if report.connector == name:
                return report
        report = ConnectorReport(connector=name)
        self.connectors.append(report)
        return report

    def replace(self, entry: ConnectorReport) -> None:
        """Put ``entry`` in the place of the report for its connector (e.g. one made by a
        helper process)."""
        self.connectors = [entry if r.connector == entry.connector else r for r in self.connectors]
        if all(r is not entry for r in self.connectors):
            self.connectors.append(entry)

    @property
    def exit_code(self) -> int:
        """The documented exit codes (docs/sync.md).

        2 a connector's configuration is wrong; 3 every connector asked for is being synced
        by another run; 1 partial failure (a connector failed, was locked or is paused, or
        a transfer was dead-lettered); 0 everything went through.
        """
        if any(r.status == CONFIG_ERROR for r in self.connectors):
            return 2
        if self.connectors and all(r.status == LOCKED for r in self.connectors):
            return 3
        troubled = (FAILED, LOCKED, PARTIAL, PAUSED)
        if any(r.status in troubled or r.dead_lettered for r in self.connectors):
            return 1
        return 0

    def table(self) -> str:
        """A fixed-width table for terminals and logs (no personal data: counts only)."""
        head = ["connector", "status", *COUNTERS, "seconds"]
        rows = [
            [r.connector, r.status, *(str(v) for v in r.counts().values()), f"{r.duration_s:.1f}"]
            for r in self.connectors
        ]
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
        lines += [_named(r.connector, r.error) for r in self.connectors if r.error]
        return "\n".join(lines)


def _named(connector: str, error: str) -> str:
    """``connector: error``, without saying the name twice (connector errors start with it);
    whatever of an authority's text is in it escaped for the terminal."""
    error = shown(error)
    return error if error.startswith(f"{connector}: ") else f"{connector}: {error}"
