"""The participant (deltagare): the number encrypted, a keyed digest to find it, a pseudonym."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.base import Base, UTCDateTime


class ParticipantRow(Base):
    __tablename__ = "participant"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(64), unique=True)
    pnr_lookup: Mapped[str] = mapped_column(String(64), unique=True)
    pnr_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    coordination_number: Mapped[bool] = mapped_column(Boolean)
    gender: Mapped[str] = mapped_column(String(6))
    birth_year: Mapped[int] = mapped_column(Integer)
    protected_identity: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
