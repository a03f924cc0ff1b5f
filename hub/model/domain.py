"""The common language for what happens to a participant (see DESIGN.md, "Domain words").

Every model refuses unknown fields and codes outside its list, and each validation error
names the field and why (JSON text is accepted for dates and codes). Free text is deliberately
absent: what crosses between authorities is codes, dates and parties, never notes — and
never diagnoses (the health model has no place for one).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.model.codes import (
    BenefitType,
    ClosureReason,
    InterventionStatus,
    InterventionType,
    OutcomeType,
    ReferralReason,
)
from hub.model.vocab import Party

Percent = Annotated[int, Field(ge=0, le=100)]


class DomainModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Period(DomainModel):
    start: date
    end: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> _Period:
        if self.end is not None and self.end < self.start:
            raise ValueError("end must not be before start")
        return self


class Referral(DomainModel):
    """Remiss / inremittering: an authority (or the person) asks the joint team to take them in."""

    kind: Literal["referral"] = "referral"
    referring_party: Party
    received_on: date
    reason: ReferralReason


class Assessment(_Period):
    """Kartläggning: the mapping phase (two weeks in the Tyresö model)."""

    kind: Literal["assessment"] = "assessment"
    responsible_party: Party


class Plan(DomainModel):
    """Genomförandeplan / SIP: who is responsible for what, as parties and intervention types."""

    kind: Literal["plan"] = "plan"
    established_on: date
    responsible_parties: tuple[Party, ...] = Field(min_length=1)
    planned_interventions: tuple[InterventionType, ...] = ()
    next_follow_up: date | None = None


class Intervention(_Period):
    """Insats: an effort at one of the parties."""

    kind: Literal["intervention"] = "intervention"
    type: InterventionType
    provider: Party
    status: InterventionStatus
    extent_percent: Percent | None = None


class Benefit(_Period):
    """Ersättning / försörjning: what the person lives on during a period."""

    kind: Literal["benefit"] = "benefit"
    type: BenefitType
    extent_percent: Percent | None = None


class HealthStatus(DomainModel):
    """What the region may share: sick-leave certificate, treatment contact, rehab coordinator.

    Never a diagnosis, never clinical notes.
    """

    kind: Literal["health"] = "health"
    sick_leave_start: date | None = None
    sick_leave_end: date | None = None
    sick_leave_degree: Literal[25, 50, 75, 100] | None = None
    ongoing_treatment_contact: bool
    rehab_coordinator_assigned: bool

    @model_validator(mode="after")
    def _sick_leave(self) -> HealthStatus:
        given = [self.sick_leave_start, self.sick_leave_end, self.sick_leave_degree]
        if any(v is not None for v in given) and any(v is None for v in given):
            raise ValueError("a sick-leave certificate needs start, end and degree together")
        if (
            self.sick_leave_start
            and self.sick_leave_end
            and self.sick_leave_end < self.sick_leave_start
        ):
            raise ValueError("sick_leave_end must not be before sick_leave_start")
        return self


class Closure(DomainModel):
    """Avslut: exit from the joint effort with reason, outcome (utfall) and exit-survey answer."""

    kind: Literal["closure"] = "closure"
    closed_on: date
    reason: ClosureReason
    outcome: OutcomeType
    survey_answer: Annotated[int, Field(ge=1, le=5)] | None = None


RecordBody = Annotated[
    Referral | Assessment | Plan | Intervention | Benefit | HealthStatus | Closure,
    Field(discriminator="kind"),
]
"""Any one of the domain facts, told apart by ``kind``."""
