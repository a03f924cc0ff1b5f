"""Web users: who may sign in to the web edge, for which party and in which role, and
the page sessions they have open.

Only the SHA-256 of a user's token is stored; the token itself is shown once, when it is
issued, and a request's token is found by its digest (``token_sha256`` is unique). A page
session is kept the same way: only the SHA-256 of the random secret its cookie holds.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.base import Base, UTCDateTime


class WebUserRow(Base):
    """One person (or service account) allowed to use the web pages and JSON API."""

    __tablename__ = "web_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    party: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(20))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """When the user last signed in or used their token (to the hour), for access reviews."""


class WebSessionRow(Base):
    """One signed-in browser: the session ``POST /login`` opened, until it ends or expires."""

    __tablename__ = "web_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_user.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
