"""Developer tool: regenerate the initial migration from the ORM models.

Until the first release the schema is one migration, ``0001_initial``; run
``python -m hub.store.autogen`` after changing a table. After the first release, add
new revisions instead (``python -m hub.store.autogen --new "message"``).
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
    if not args.new:
        for old in versions.glob("0001_*.py"):
            old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'autogen.db'}")
        with db.engine.begin() as conn:
            cfg = alembic_config(conn)
            if args.new:
                command.upgrade(cfg, "head")
                command.revision(cfg, message=args.new, autogenerate=True)
            else:
                command.revision(cfg, message="initial", autogenerate=True, rev_id="0001")
        db.dispose()
    subprocess.run([sys.executable, "-m", "ruff", "format", str(versions)], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
