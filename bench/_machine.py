"""The machine a bench ran on, as each bench prints it beside its figures."""

from __future__ import annotations

import contextlib
import os
import platform
import sqlite3
from importlib.metadata import version
from pathlib import Path


def machine(*packages: str) -> str:
    """OS, CPU model, cores, memory, Python and SQLite, and the versions of ``packages``."""
    cpu, memory = platform.processor() or "?", "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GB RAM"
                break
    versions = "".join(f", {name} {version(name)}" for name in packages)
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores, {memory}; "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}{versions}"
    )
