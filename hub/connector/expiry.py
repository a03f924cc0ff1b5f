"""Client certificates about to expire, said before the night they stop their connector.

An expired client certificate is a configuration error when the connector is built
(:mod:`hub.connector.tls`): that night's sync of the connector fails. Renewing a
certificate at an authority takes days or weeks, so ``evi connectors list``, ``check``,
``evi sync`` and ``evi worker`` warn from ``[sync] certificate_warning_days`` before it.
Only the stored ``client_cert`` path is read; a missing or unreadable file is left to the
build, which names the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hub.connector.tls import certificate_expiry


def stored_certificate_expiry(options: dict[str, Any]) -> datetime | None:
    """When the client certificate named in a connector's stored options expires (UTC);
    None without one, or when the file cannot be read as a PEM certificate."""
    path = options.get("client_cert")
    if not path:
        return None
    try:
        return certificate_expiry(Path(path))
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class CertificateNotice:
    """One connector whose client certificate expires within the warning period."""

    connector: str
    expires: datetime

    def message(self, now: datetime) -> str:
        """The warning line, with the command that installs a renewed certificate."""
        fix = (
            f"install a renewed certificate with `evi connectors configure {self.connector} "
            "--set client_cert=PATH --set client_key=PATH`"
        )
        if self.expires <= now:
            return (
                f"{self.connector}: its client certificate expired on "
                f"{self.expires:%Y-%m-%d %H:%M} UTC and the authority cannot be reached; {fix}"
            )
        days = (self.expires - now) // timedelta(days=1)
        when = "within a day" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
        return (
            f"{self.connector}: its client certificate expires on "
            f"{self.expires:%Y-%m-%d %H:%M} UTC ({when}); {fix}"
        )


def expiring(
    statuses: list[tuple[str, datetime | None]], *, now: datetime, within_days: int
) -> list[CertificateNotice]:
    """The connectors (name, certificate expiry) whose certificate expires before
    ``now + within_days``; none when ``within_days`` is 0 (warnings turned off)."""
    if within_days <= 0:
        return []
    limit = now + timedelta(days=within_days)
    return [
        CertificateNotice(name, expires)
        for name, expires in statuses
        if expires is not None and expires <= limit
    ]
