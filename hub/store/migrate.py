"""Schema migrations (Alembic), shipped inside the package and run by ``evi db upgrade``.

Alembic (and the Mako templates and dialect modules it pulls in, about 0.2 s) is imported
inside the functions, not at the top: only ``evi db``, the demo and the migration tests use
it, while importing this module is part of every ``evi`` start that reaches the demo code.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import hub.store.tables  # noqa: F401  - registers every table on Base.metadata
from hub.store.base import Base
from hub.store.db import Database

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade to ``revision``; returns (revision before, revision after). Repeatable."""
    from alembic import command
    from alembic.migration import MigrationContext

    db.check_connection()
    with db.engine.begin() as conn:
        before = MigrationContext.configure(conn).get_current_revision()
        command.upgrade(alembic_config(conn), revision)
        after = MigrationContext.configure(conn).get_current_revision()
    return before, after


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(db: Database) -> str | None:
    from alembic.migration import MigrationContext

    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def drift(db: Database) -> list[Any]:
    """Differences between the migrated schema and the ORM models (empty when in step)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))
