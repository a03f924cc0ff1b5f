"""The participant (deltagare): the number encrypted, a keyed digest to find it, a pseudonym.

``consent_revision`` counts changes to the person's consents, withdrawals and blocks, so a
cache of gate snapshots can tell, with the participant row it reads anyway, whether the
snapshot it holds is still the stored one.
"""

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
    # Bumped by every change to the person's consents, withdrawals and blocks
    # (ConsentRepository.touch): caches of gate snapshots compare it to stay current.
    consent_revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
