"""Where witness copies of checkpoints live, shared by the witness-directory plugin
(which writes them) and `evi log verify` (which reads them back)."""

from __future__ import annotations

from pathlib import Path

from hub.settings import Settings

SUFFIX = ".checkpoint"


def witness_directory(settings: Settings) -> Path | None:
    """``[ledger] witness_dir`` resolved against ``$EVI_HOME``; ``None`` when unset."""
    configured = settings.ledger.witness_dir
    if configured is None:
        return None
    path = configured.expanduser()
    return path if path.is_absolute() else settings.resolved_home / path


def read_witness_directory(directory: Path | None) -> dict[str, str]:
    """Every checkpoint note in ``directory`` by file name (empty if there is none)."""
    if directory is None or not directory.is_dir():
        return {}
    return {path.name: path.read_text() for path in sorted(directory.glob(f"*{SUFFIX}"))}
