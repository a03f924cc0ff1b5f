"""Tables for the consent area: consents and their versions, withdrawals, blocks.

Consent versions are never updated or deleted: an amendment is a new version row, a
withdrawal a new withdrawal row. The only column ever changed after insert is a block's
``lifted_at``/``lifted_by``, which records when the person lifted it.

Evidence is stored sealed (AES-256-GCM, bound to the consent id and version): a signer's
certificate usually carries their name and number.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import JSON

from hub.store.base import Base, UTCDateTime


class ConsentRow(Base):
    """A consent's identity: the id that every version, withdrawal and decision cites."""

    __tablename__ = "consent"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    versions: Mapped[list[ConsentVersionRow]] = relationship(
        back_populates="consent", order_by="ConsentVersionRow.version", lazy="selectin"
    )


class ConsentVersionRow(Base):
    """One version of a consent: the terms as signed, when recorded, how verified."""

    __tablename__ = "consent_version"
    __table_args__ = (UniqueConstraint("consent_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consent_id: Mapped[str] = mapped_column(ForeignKey("consent.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    categories: Mapped[list[str]] = mapped_column(JSON)
    purposes: Mapped[list[str]] = mapped_column(JSON)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    informed_by: Mapped[str] = mapped_column(String(100))
    informed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(100))
    evidence_kind: Mapped[str] = mapped_column(String(40))
    evidence_verifier: Mapped[str] = mapped_column(String(100))
    evidence_detail: Mapped[str] = mapped_column(String(300))
    evidence_sealed: Mapped[str] = mapped_column(Text)

    consent: Mapped[ConsentRow] = relationship(back_populates="versions")
    party_rows: Mapped[list[ConsentPartyRow]] = relationship(
        order_by="ConsentPartyRow.party", lazy="selectin"
    )

    @property
    def parties(self) -> list[str]:
        return [row.party for row in self.party_rows]


class ConsentPartyRow(Base):
    """A party a consent version names; its own table so "who names party X" is indexed."""

    __tablename__ = "consent_party"

    version_id: Mapped[int] = mapped_column(ForeignKey("consent_version.id"), primary_key=True)
    party: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)


class ConsentWithdrawalRow(Base):
    """Återkallelse: whole (no party, no category) or partial, effective from ``at``."""

    __tablename__ = "consent_withdrawal"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    consent_id: Mapped[str] = mapped_column(ForeignKey("consent.id"), index=True)
    up_to_version: Mapped[int] = mapped_column(Integer)
    party: Mapped[str | None] = mapped_column(String(32))
    category: Mapped[str | None] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(100))


class ConsentBlockRow(Base):
    """Spärr: the person blocks a party, a category or both; ``None`` means any."""

    __tablename__ = "consent_block"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    party: Mapped[str | None] = mapped_column(String(32))
    category: Mapped[str | None] = mapped_column(String(20))
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(100))
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lifted_by: Mapped[str | None] = mapped_column(String(100))
