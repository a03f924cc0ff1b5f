"""Schema migrations (Alembic), shipped inside the package and run by ``evi db upgrade``.

Alembic (and the Mako templates and dialect modules it pulls in, about 0.2 s) is imported
inside the functions, not at the top: only ``evi db``, the demo and the migration tests use
it, while importing this module is part of every ``evi`` start that reaches the demo code.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hub.store.tables  # noqa: F401  - registers every table on Base.metadata
from hub.errors import StorageError
from hub.store.base import Base
from hub.store.db import Database

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0009"
"""The newest revision this installation ships (a test checks it is Alembic's head): what
:func:`check_revision` asks of a database without importing Alembic on every start."""


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

    db.create_file()
    db.check_connection()
    with db.engine.begin() as conn:
        before = MigrationContext.configure(conn).get_current_revision()
        if before is not None and before > HEAD:  # a newer release upgraded it (rolled back?)
            raise StorageError(revision_problem(before) or before)
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


def stored_revision(connection: Connection) -> str | None:
    """The database's revision as Alembic recorded it (``None``: never upgraded)."""
    from sqlalchemy import inspect, text

    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def revision_problem(revision: str | None) -> str | None:
    """What is wrong with a database at ``revision`` for this installation, or ``None``."""
    if revision == HEAD:
        return None
    if revision is None or revision < HEAD:
        return (
            f"the database's schema is at revision {revision or 'none'}, this installation "
            f"needs {HEAD}: run `evi db upgrade` (back the database up first)"
        )
    return (
        f"the database's schema is at revision {revision}, newer than this installation "
        f"knows ({HEAD}): install the EVI hub release that upgraded it"
    )


def stamp_head(connection: Connection) -> None:
    """Record :data:`HEAD` as the revision of tables made with ``create_all`` (tests and
    benchmarks build their databases that way, faster than migrating)."""
    from alembic.migration import MigrationContext

    MigrationContext.configure(connection).stamp(_scripts(), "head")


@lru_cache(maxsize=1)
def _scripts() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def drift(db: Database) -> list[Any]:
    """Differences between the migrated schema and the ORM models (empty when in step)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))
