"""Web user repository: find users by name or by the digest of their token, and keep
their page sessions. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.orm import Session

from hub.store.tables.users import WebSessionRow, WebUserRow


class UserRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_name(self, name: str) -> WebUserRow | None:
        return self.session.scalars(select(WebUserRow).where(WebUserRow.name == name)).one_or_none()

    def by_token_digest(self, digest: str) -> WebUserRow | None:
        return self.session.scalars(
            select(WebUserRow).where(WebUserRow.token_sha256 == digest)
        ).one_or_none()

    def all(self) -> Sequence[WebUserRow]:
        return self.session.scalars(select(WebUserRow).order_by(WebUserRow.name)).all()

    def count_active(self) -> int:
        return (
            self.session.scalar(
                select(func.count()).select_from(WebUserRow).where(WebUserRow.disabled_at.is_(None))
            )
            or 0
        )

    def add(self, row: WebUserRow) -> None:
        self.session.add(row)
        self.session.flush()

    def mark_used(self, name: str, when: datetime) -> None:
        """Record that ``name`` signed in or used their token at ``when``."""
        self.session.execute(
            update(WebUserRow).where(WebUserRow.name == name).values(last_used_at=when)
        )

    def add_session(self, row: WebSessionRow) -> None:
        self.session.add(row)
        self.session.flush()

    def by_session_digest(self, digest: str) -> tuple[WebSessionRow, WebUserRow] | None:
        """The session whose secret has SHA-256 ``digest``, and its user."""
        found = self.session.execute(
            select(WebSessionRow, WebUserRow)
            .join(WebUserRow, WebUserRow.id == WebSessionRow.user_id)
            .where(WebSessionRow.secret_sha256 == digest)
        ).one_or_none()
        return None if found is None else (found[0], found[1])

    def end_session(self, digest: str) -> None:
        self._delete_sessions(WebSessionRow.secret_sha256 == digest)

    def end_sessions_of(self, user_id: int) -> None:
        self._delete_sessions(WebSessionRow.user_id == user_id)

    def end_expired_sessions(self, now: datetime) -> None:
        self._delete_sessions(WebSessionRow.expires_at <= now)

    def _delete_sessions(self, condition: ColumnElement[bool]) -> None:
        self.session.execute(delete(WebSessionRow).where(condition))
