"""Connector configuration repository. Takes a session, never commits."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.store.tables.connectors import ConnectorConfigRow


class ConnectorConfigRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, name: str) -> ConnectorConfigRow | None:
        return self.session.get(ConnectorConfigRow, name)

    def get_for_update(self, name: str) -> ConnectorConfigRow | None:
        """The row locked against concurrent updates (PostgreSQL; SQLite locks the file)."""
        return self.session.scalars(
            select(ConnectorConfigRow).where(ConnectorConfigRow.name == name).with_for_update()
        ).one_or_none()

    def ensure(self, name: str) -> ConnectorConfigRow:
        """The row for ``name``, added (disabled, no options) if there is none yet."""
        row = self.get_for_update(name)
        if row is None:
            row = ConnectorConfigRow(
                name=name,
                enabled=False,
                paused=False,
                options={},
                secrets={},
                consecutive_failures=0,
                updated_at=datetime.now(UTC),
            )
            self.session.add(row)
            self.session.flush()
        return row

    def all(self) -> dict[str, ConnectorConfigRow]:
        rows = self.session.scalars(select(ConnectorConfigRow)).all()
        return {row.name: row for row in rows}
