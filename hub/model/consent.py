"""Consent (samtycke) as the hub's common language: what a person signs, and its evidence.

A :class:`ConsentSubmission` is what a consent file holds (see docs/consent.md): the
person, the terms they agreed to, who informed them, and the evidence that they did.
The terms without the evidence form the canonical consent document
(:mod:`hub.consent.document`) that an electronic signature covers.

Evidence kinds: ``paper`` (:class:`PaperEvidence`) and ``signature``
(:class:`SignatureEvidence`) are verified by the built-in plugins; any other ``kind``
becomes :class:`PluginEvidence` and must be verified by a plugin that knows it, or the
consent is refused.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from hub.model.identity import IdentityNumber
from hub.model.vocab import Category, Party, Purpose

DOCUMENT_FORMAT = "evi-consent/1"
"""The ``format`` member of every canonical consent document."""


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:30+01:00 is in year 0 in UTC
        raise ValueError(
            "out of range once its offset is applied; give a time between "
            "0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z"
        ) from None


def _not_a_number(value: Any) -> Any:
    # pydantic would read a number, or text of digits alone, as seconds since 1970: a date
    # written YYYYMMDD ("20250101") would become 1970-08-23T09:01:41Z.
    if isinstance(value, int | float) or (
        isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit()
    ):
        raise ValueError("needs a date and time with offset, e.g. 2025-01-01T00:00:00Z")
    return value


UTCTime = Annotated[AwareDatetime, BeforeValidator(_not_a_number), AfterValidator(_utc)]
"""A timezone-aware instant, normalised to UTC. Naive times are refused, and so are
numbers and texts of digits alone (never read as seconds since 1970)."""


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


Sha256Hex = Annotated[str, BeforeValidator(_lower), Field(pattern=r"^[0-9a-f]{64}$")]


def _base64(value: str) -> str:
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64") from None
    if not decoded:
        raise ValueError("empty signature")
    return value


# -- evidence -------------------------------------------------------------------------------


class PaperEvidence(BaseModel):
    """A signed paper form: the SHA-256 of its scan and the caseworker who witnessed it.

    ``scan`` (optional, not stored) is the scanned file; when given, its SHA-256 must equal
    ``document_sha256``. A relative path is relative to the consent file.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["paper"]
    document_sha256: Sha256Hex
    witnessed_by: str = Field(min_length=1, max_length=100)
    witnessed_at: UTCTime | None = None
    scan: Path | None = Field(default=None, exclude=True)


class SignatureEvidence(BaseModel):
    """A detached signature over the canonical consent document, with the signer's chain.

    ``signature`` is base64. ``certificates`` are PEM, the signer's certificate first and
    then any intermediates; the root must be one of the configured trust anchors.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["signature"]
    signature: Annotated[str, AfterValidator(_base64)]
    certificates: list[str] = Field(min_length=1, max_length=10)


class PluginEvidence(BaseModel):
    """Evidence of a kind only a plugin understands (e.g. a municipality's own e-signature)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(pattern=r"^[a-z][a-z0-9_-]{1,39}$")
    data: dict[str, Any] = Field(default_factory=dict)


def _evidence_tag(value: Any) -> str:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if kind in ("paper", "signature") else "plugin"


Evidence = Annotated[
    Annotated[PaperEvidence, Tag("paper")]
    | Annotated[SignatureEvidence, Tag("signature")]
    | Annotated[PluginEvidence, Tag("plugin")],
    Discriminator(_evidence_tag),
]


class EvidenceVerdict(BaseModel):
    """What an evidence verifier concluded. ``detail`` is one line without personal data.

    For a refusal, ``detail`` says what is wrong (it is shown to the user as the reason).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    accepted: bool
    verifier: str = Field(min_length=1, max_length=100)
    detail: str = Field(min_length=1, max_length=300)


# -- the consent itself ---------------------------------------------------------------------


def _normalised(value: tuple[Any, ...]) -> tuple[Any, ...]:
    # Order and repetition carry no meaning; normalising them keeps the canonical
    # document (and so a signature) independent of how the file was written.
    return tuple(sorted(set(value), key=str))


def _two_parties(value: tuple[str, ...]) -> tuple[str, ...]:
    parties = _normalised(value)
    if len(parties) < 2:
        raise ValueError("needs at least 2 different parties (a consent lets parties share)")
    return parties


class ConsentTerms(BaseModel):
    """What the person agreed to: which parties may share which categories, for what, when.

    Disclosures are covered between any two of ``parties`` (origin and recipient both
    named). The period is ``[valid_from, valid_until)``. Lists are sorted and de-duplicated.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    parties: Annotated[tuple[Party, ...], AfterValidator(_two_parties)] = Field(max_length=32)
    categories: Annotated[tuple[Category, ...], AfterValidator(_normalised)] = Field(min_length=1)
    purposes: Annotated[tuple[Purpose, ...], AfterValidator(_normalised)] = Field(min_length=1)
    valid_from: UTCTime
    valid_until: UTCTime
    informed_by: str = Field(min_length=1, max_length=100)
    informed_at: UTCTime

    @model_validator(mode="after")
    def _period(self) -> ConsentTerms:
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be later than valid_from")
        return self


class ConsentSubmission(ConsentTerms):
    """A consent file: the person, the terms, optionally the consent it amends, evidence."""

    pnr: IdentityNumber
    amends: UUID | None = None
    evidence: Evidence
