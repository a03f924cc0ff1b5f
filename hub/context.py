"""The running hub: settings, database and keys, opened once per process.

CLI commands and the web app obtain it through :func:`open_hub`; nothing is opened at
import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import inspect

from hub.errors import StorageError
from hub.keys import KeyRing
from hub.settings import Settings, get_settings
from hub.store.db import Database, safe_url
from hub.store.meta import open_keyring

if TYPE_CHECKING:
    import pluggy


@dataclass
class Hub:
    settings: Settings
    db: Database
    _keys: KeyRing | None = field(default=None, repr=False)

    @property
    def keys(self) -> KeyRing:
        if self._keys is None:
            self.require_schema()
            with self.db.session() as session:
                self._keys = open_keyring(session, self.settings)
        return self._keys

    def reload_keys(self) -> None:
        """Load the keys again on next use (after a rotation replaced one)."""
        self._keys = None

    @cached_property
    def plugins(self) -> pluggy.PluginManager:
        from hub.plugins import get_plugin_manager

        return get_plugin_manager()

    def require_schema(self, *, any_revision: bool = False) -> None:
        """Raise a clear error when ``evi db upgrade`` has not been run on this database, or
        its schema is of another release than this installation's. ``any_revision``: only
        the hub's tables must be there, of whatever release (a backup taken before
        ``evi db upgrade``)."""
        self.db.check_connection()
        from hub.store.migrate import revision_problem, stored_revision

        # in a session: a server gone between these reads is said in words too
        with self.db.session() as session:
            connection = session.connection()
            tables = inspect(connection).has_table("hub_meta")
            problem = (
                revision_problem(stored_revision(connection))
                if tables and not any_revision
                else None
            )
        if not tables:
            raise StorageError(
                f"the database at {safe_url(self.db.url)} has no EVI hub tables yet; "
                "run `evi db upgrade` first"
            )
        if problem is not None:
            raise StorageError(problem)

    def close(self) -> None:
        self.db.dispose()


def open_hub(settings: Settings | None = None) -> Hub:
    settings = settings or get_settings()
    # An empty home gets no empty database file: `evi db upgrade` makes it.
    return Hub(settings=settings, db=Database(settings.effective_database_url(), create=False))
