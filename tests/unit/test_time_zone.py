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
