"""Facts about the database itself (key fingerprints, schema notes)."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.base import Base


class HubMeta(Base):
    __tablename__ = "hub_meta"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(500))
