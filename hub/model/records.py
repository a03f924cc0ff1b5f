"""What crosses the hub: inbound records from authorities and outbound transfers to them.

Flow (DESIGN.md): a connector pulls a :class:`NativeRecord`, its mapping turns it into a
:class:`CommonRecord`, the gate decides, the store upserts by ``(source, source_id)``, the
router queues a :class:`Transfer` per recipient, and the connector pushes it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.model.canonical import json_sha256
from hub.model.domain import RecordBody
from hub.model.identity import IdentityNumber
from hub.model.vocab import Category, Party, Purpose

KIND_CATEGORY: dict[str, Category] = {
    "referral": Category.REFERRAL,
    "assessment": Category.ASSESSMENT,
    "plan": Category.PLAN,
    "intervention": Category.INTERVENTION,
    "benefit": Category.BENEFIT,
    "health": Category.HEALTH,
    "closure": Category.OUTCOME,
}
"""The information category a consent must name for each kind of record."""


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("times must carry a timezone (UTC)")
    return value


MAX_CURSOR_LENGTH = 500
"""The longest cursor the hub stores (``sync_cursor.cursor``): a connector refuses a longer
one from its authority rather than fail to store it every night."""


class NativeRecord(BaseModel):
    """One record as an authority's API returned it, before mapping.

    ``cursor`` is the position to resume *after* this record (inclusive cursors are fine:
    records are upserted by ``source_id``, so reading one twice is harmless).
    """

    model_config = ConfigDict(frozen=True)

    source: Party
    source_id: str = Field(min_length=1, max_length=200)
    cursor: str
    payload: dict[str, Any]

    def digest(self) -> str:
        """SHA-256 of the canonical payload: what the ledger keeps of a refused record."""
        return json_sha256(self.payload)


class UnmappedCode(BaseModel):
    """A native code the authority's mapping file does not know (kept, flagged, counted)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str
    code: str


class CommonRecord(BaseModel):
    """A fact about a participant in the hub's common language, from one authority."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Party
    source_id: str = Field(min_length=1, max_length=200)
    person: IdentityNumber
    updated_at: datetime
    body: RecordBody
    protected_identity: bool = False
    restricted: bool = Field(
        default=False,
        description="obtained under a legal right for one purpose only (e.g. SSBTEK): "
        "never disclosed onward, not even to the joint team, so the hub refuses it on "
        "arrival (gate reason restricted_origin, logged) and never stores it",
    )
    unmapped: tuple[UnmappedCode, ...] = ()
    mapping_version: str | None = None

    @field_validator("updated_at")
    @classmethod
    def _updated_at_aware(cls, value: datetime) -> datetime:
        return _aware(value)

    @property
    def kind(self) -> str:
        return self.body.kind

    @property
    def category(self) -> Category:
        return KIND_CATEGORY[self.body.kind]

    def body_json(self) -> dict[str, Any]:
        data: dict[str, Any] = self.body.model_dump(mode="json")
        return data

    def payload_sha256(self) -> str:
        """SHA-256 of the canonical body: the ledger's fingerprint of what was disclosed."""
        return json_sha256(self.body_json())


class Transfer(BaseModel):
    """One disclosure queued for one recipient. ``idempotency_key`` makes a retry harmless.

    ``person`` is the identity number the recipient matches on; it is ``None`` when the
    recipient may not receive identity (protected identity), in which case the
    connector sends the pseudonymous reference only.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    idempotency_key: str = Field(min_length=16, max_length=200)
    origin: Party
    recipient: Party
    purpose: Purpose
    participant: str = Field(description="pseudonym")
    person: IdentityNumber | None
    source_id: str
    updated_at: datetime
    body: RecordBody

    @property
    def category(self) -> Category:
        return KIND_CATEGORY[self.body.kind]

    def payload_sha256(self) -> str:
        return json_sha256(self.body.model_dump(mode="json"))


class PushResult(BaseModel):
    """What the authority answered to a push."""

    model_config = ConfigDict(frozen=True)

    accepted: bool
    duplicate: bool = False
    reference: str | None = None
    detail: str | None = None
