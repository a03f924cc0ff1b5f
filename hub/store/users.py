"""Web user repository: find users by name or by the digest of their token. Never commits."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.store.tables.users import WebUserRow


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
