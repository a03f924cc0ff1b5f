"""Where the shipped `mappings/` and `config/` folders are, installed or not.

In a built wheel they live inside the package at ``hub/_bundled/`` (see
``[tool.hatch.build.targets.wheel.force-include]``); in a source checkout or an editable
install they are the top-level folders of the repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Bundled = Literal["mappings", "config"]


def bundled_path(name: Bundled) -> Path:
    """Return the directory holding the shipped ``mappings`` or ``config`` files."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_bundled" / name, here.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"the shipped '{name}' folder is missing from this installation")
