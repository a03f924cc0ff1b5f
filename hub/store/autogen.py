"""Developer tool: regenerate the initial migration from the ORM models.

The schema began as one regenerated migration, ``0001_initial``; later tables come as
new revisions (``python -m hub.store.autogen --new "message"``; ``0002_web_users`` is the
first). Regenerating ``0001`` (no ``--new``) is refused once a later revision exists: it
would create their tables twice.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command

from hub.store.db import Database
from hub.store.migrate import MIGRATIONS, alembic_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--new", metavar="MESSAGE", help="add a revision instead of regenerating")
    args = parser.parse_args(argv)
    versions = MIGRATIONS / "versions"
    later = sorted(p.name for p in versions.glob("*.py") if not p.name.startswith("0001_"))
    if not args.new and later:
        parser.error(f"later revisions exist ({', '.join(later)}); add one with --new MESSAGE")
    if not args.new:
        for old in versions.glob("0001_*.py"):
            old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'autogen.db'}")
        with db.engine.begin() as conn:
            cfg = alembic_config(conn)
            if args.new:
                command.upgrade(cfg, "head")
                number = f"{len(list(versions.glob('[0-9][0-9][0-9][0-9]_*.py'))) + 1:04d}"
                command.revision(cfg, message=args.new, autogenerate=True, rev_id=number)
            else:
                command.revision(cfg, message="initial", autogenerate=True, rev_id="0001")
        db.dispose()
    subprocess.run([sys.executable, "-m", "ruff", "format", str(versions)], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
