"""Common code lists every authority's native codes are mapped to (see mappings/).

Each list has ``UNMAPPED``: a native code the mapping file does not know. The record is
kept and flagged (never silently dropped), counted in the sync report, or refused when
``sync.strict_mapping`` is on.
"""

from __future__ import annotations

from enum import StrEnum


class BenefitType(StrEnum):
    """What the person lives on (ersättning / försörjning)."""

    FORSORJNINGSSTOD = "forsorjningsstod"
    AKTIVITETSSTOD = "aktivitetsstod"
    UTVECKLINGSERSATTNING = "utvecklingsersattning"
    SJUKPENNING = "sjukpenning"
    AKTIVITETSERSATTNING = "aktivitetsersattning"
    SJUKERSATTNING = "sjukersattning"
    REHABILITERINGSERSATTNING = "rehabiliteringsersattning"
    NONE = "none"
    UNMAPPED = "unmapped"


class InterventionType(StrEnum):
    """An effort at one of the parties (insats)."""

    ARBETSTRANING = "arbetstraning"
    SIUS = "sius"
    SUPPORTED_EMPLOYMENT = "supported_employment"
    STUDIE_OCH_YRKESVAGLEDNING = "studie_och_yrkesvagledning"
    ARBETSLIVSINRIKTAD_REHABILITERING = "arbetslivsinriktad_rehabilitering"
    PRAKTIK = "praktik"
    UTBILDNING = "utbildning"
    MOTIVATION = "motivation"
    HALSOFRAMJANDE = "halsoframjande"
    OTHER = "other"
    UNMAPPED = "unmapped"


class InterventionStatus(StrEnum):
    PLANNED = "planned"
    ONGOING = "ongoing"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    UNMAPPED = "unmapped"


class OutcomeType(StrEnum):
    """Where the person went (utfall)."""

    WORK = "work"
    WORK_WITH_SUBSIDY = "work_with_subsidy"
    STUDIES = "studies"
    SELF_SUFFICIENCY = "self_sufficiency"
    RIGHT_BENEFIT = "right_benefit"
    SOL_LSS_OCCUPATION = "sol_lss_occupation"
    OTHER = "other"
    UNMAPPED = "unmapped"


class ClosureReason(StrEnum):
    """Why the joint effort ended (slutorsak)."""

    GOAL_REACHED = "goal_reached"
    OTHER_SUPPORT = "other_support"
    ILLNESS = "illness"
    MOVED = "moved"
    OWN_REQUEST = "own_request"
    NO_CONTACT = "no_contact"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    OTHER = "other"
    UNMAPPED = "unmapped"


class ReferralReason(StrEnum):
    """Why the authority refers the person to the joint team."""

    LONG_TERM_UNEMPLOYMENT = "long_term_unemployment"
    LONG_TERM_SICK_LEAVE = "long_term_sick_leave"
    FINANCIAL_AID = "financial_aid"
    UNCLEAR_WORK_CAPACITY = "unclear_work_capacity"
    YOUNG_NOT_IN_EDUCATION = "young_not_in_education"
    OTHER = "other"
    UNMAPPED = "unmapped"


CODE_LISTS: dict[str, type[StrEnum]] = {
    "benefit_type": BenefitType,
    "intervention_type": InterventionType,
    "intervention_status": InterventionStatus,
    "outcome": OutcomeType,
    "closure_reason": ClosureReason,
    "referral_reason": ReferralReason,
}
"""Every list a mapping file may map into, by the name mapping files use."""
