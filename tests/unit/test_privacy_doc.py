"""docs/privacy.md names the tests that prove its statements; each must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_every_test_named_in_the_privacy_doc_exists() -> None:
    named = set(re.findall(r"`(test_[a-z0-9_]+)`", (ROOT / "docs" / "privacy.md").read_text()))
    assert named
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    missing = sorted(n for n in named if f"def {n}(" not in sources)
    assert not missing, missing
