"""Swedish local time where the system has no time-zone database (container images)."""

from __future__ import annotations

import os
import subprocess
import sys


def test_swedish_time_works_without_the_systems_time_zone_database() -> None:
    # The pages and the person's receipt show Europe/Stockholm time; the tzdata package
    # stands in for a missing /usr/share/zoneinfo.
    env = {**os.environ, "PYTHONTZPATH": "/nonexistent"}
    code = "import hub.casework.status, hub.consent.receipt; print(hub.casework.status.SWEDEN)"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Europe/Stockholm"


def test_log_lines_carry_utc_time_with_its_z() -> None:
    # The web's audit log and every command's log lines: comparable across hosts and
    # across the change to and from summer time.
    import logging
    import time

    from hub.cli import log_formatter

    record = logging.LogRecord("hub.web.audit", logging.WARNING, __file__, 1, "refused", (), None)
    record.created = time.mktime((2026, 7, 1, 12, 0, 0, 0, 0, -1))  # local noon in summer
    line = log_formatter().format(record)
    assert line == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)) + (
        " WARNING hub.web.audit: refused"
    )
    assert line.startswith("2026-07-01T") and line[19] == "Z"
