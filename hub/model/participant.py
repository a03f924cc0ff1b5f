"""The participant (deltagare) and their case (ärende) as the hub presents them."""

from __future__ import annotations

import re
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from hub.model.domain import RecordBody
from hub.model.identity import Gender, IdentityNumber
from hub.model.vocab import Party

PSEUDONYM = re.compile(r"^p-[0-9a-f]{32}$")
"""A participant's pseudonym, as :meth:`hub.keys.KeyRing.pseudonym` makes it."""


class Participant(BaseModel):
    """A person in the joint effort. ``identity`` is absent wherever the viewer may not see it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pseudonym: str = Field(pattern=PSEUDONYM.pattern)
    identity: IdentityNumber | None = None
    gender: Gender
    birth_year: int = Field(ge=1800, le=2200)
    protected_identity: bool = False


class Case(BaseModel):
    """Ärende: one period of the person's participation in the joint effort."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    participant: str = Field(description="pseudonym")
    opened_on: date
    closed_on: date | None = None
    parties: tuple[Party, ...] = ()


class StatusItem(BaseModel):
    """One fact in a consolidated status, with the authority it came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Party
    source_id: str
    body: RecordBody


class ConsolidatedStatus(BaseModel):
    """What a caseworker sees: the facts consent lets their authority see, per source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    participant: Participant
    items: tuple[StatusItem, ...]
    withheld: int = Field(
        ge=0, description="facts that exist but consent does not let the viewer see"
    )
