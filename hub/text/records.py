"""The common model's field names, record kinds and codes as words, in Swedish or English.

A record's body is codes, dates and parties (hub/model/domain.py); shown to a person each
field gets a name and each code a word (``long_term_sick_leave`` → "long-term sick leave",
"långvarig sjukskrivning"), from the catalog (:mod:`hub.text.catalog`). The web pages
(:mod:`hub.web.record_text`) and the register extract (:mod:`hub.casework.held`) both read
them here. tests/unit/test_web_i18n.py checks that every code of :mod:`hub.model.codes`,
every field of the record bodies and every kind has a name here, and that the catalog
translates each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from hub.model.codes import (
    BenefitType,
    ClosureReason,
    InterventionStatus,
    InterventionType,
    OutcomeType,
    ReferralReason,
)
from hub.text.catalog import N_, translations

FIELD_NAMES: Final[dict[str, str]] = {
    # in the order they are listed: what it is first, then who, when and how much
    "type": N_("type"),
    "reason": N_("reason"),
    "outcome": N_("outcome"),
    "status": N_("status"),
    "provider": N_("provider"),
    "referring_party": N_("referred by"),
    "received_on": N_("received on"),
    "responsible_party": N_("responsible party"),
    "responsible_parties": N_("responsible parties"),
    "established_on": N_("established on"),
    "planned_interventions": N_("planned interventions"),
    "next_follow_up": N_("next follow-up"),
    "start": N_("start"),
    "end": N_("end"),
    "extent_percent": N_("extent (%)"),
    "sick_leave_start": N_("sick leave from"),
    "sick_leave_end": N_("sick leave until"),
    "sick_leave_degree": N_("sick leave degree (%)"),
    "ongoing_treatment_contact": N_("ongoing treatment contact"),
    "rehab_coordinator_assigned": N_("rehabilitation coordinator assigned"),
    "closed_on": N_("closed on"),
    "survey_answer": N_("exit survey answer (1-5)"),
}

KIND_NAMES: Final[dict[str, str]] = {
    "referral": N_("referral"),
    "assessment": N_("assessment"),
    "plan": N_("plan"),
    "intervention": N_("intervention"),
    "benefit": N_("benefit"),
    "health": N_("health"),
    "closure": N_("closure"),
}
"""How the pages name each kind of record (:data:`hub.model.records.KIND_CATEGORY`)."""

CODE_NAMES: Final[dict[str, str]] = {
    # benefits (ersättning / försörjning)
    BenefitType.FORSORJNINGSSTOD: N_("financial aid (försörjningsstöd)"),
    BenefitType.AKTIVITETSSTOD: N_("activity support (aktivitetsstöd)"),
    BenefitType.UTVECKLINGSERSATTNING: N_("development allowance (utvecklingsersättning)"),
    BenefitType.SJUKPENNING: N_("sickness benefit (sjukpenning)"),
    BenefitType.AKTIVITETSERSATTNING: N_("activity compensation (aktivitetsersättning)"),
    BenefitType.SJUKERSATTNING: N_("sickness compensation (sjukersättning)"),
    BenefitType.REHABILITERINGSERSATTNING: N_(
        "rehabilitation compensation (rehabiliteringsersättning)"
    ),
    BenefitType.NONE: N_("none"),
    # interventions (insatser)
    InterventionType.ARBETSTRANING: N_("work training (arbetsträning)"),
    InterventionType.SIUS: N_("SIUS (special introduction and follow-up support)"),
    InterventionType.SUPPORTED_EMPLOYMENT: N_("Supported Employment"),
    InterventionType.STUDIE_OCH_YRKESVAGLEDNING: N_("study and career guidance"),
    InterventionType.ARBETSLIVSINRIKTAD_REHABILITERING: N_("work-oriented rehabilitation"),
    InterventionType.PRAKTIK: N_("work placement (praktik)"),
    InterventionType.UTBILDNING: N_("education"),
    InterventionType.MOTIVATION: N_("motivational support"),
    InterventionType.HALSOFRAMJANDE: N_("health promotion"),
    InterventionStatus.PLANNED: N_("planned"),
    InterventionStatus.ONGOING: N_("ongoing"),
    InterventionStatus.COMPLETED: N_("completed"),
    InterventionStatus.CANCELLED: N_("cancelled"),
    # outcomes (utfall)
    OutcomeType.WORK: N_("work"),
    OutcomeType.WORK_WITH_SUBSIDY: N_("work with subsidy"),
    OutcomeType.STUDIES: N_("studies"),
    OutcomeType.SELF_SUFFICIENCY: N_("self-sufficiency"),
    OutcomeType.RIGHT_BENEFIT: N_("right benefit"),
    OutcomeType.SOL_LSS_OCCUPATION: N_("SoL/LSS occupation"),
    # reasons for closing (slutorsak)
    ClosureReason.GOAL_REACHED: N_("goal reached"),
    ClosureReason.OTHER_SUPPORT: N_("other support"),
    ClosureReason.ILLNESS: N_("illness"),
    ClosureReason.MOVED: N_("moved"),
    ClosureReason.OWN_REQUEST: N_("own request"),
    ClosureReason.NO_CONTACT: N_("no contact"),
    ClosureReason.CONSENT_WITHDRAWN: N_("consent withdrawn"),
    # reasons for a referral
    ReferralReason.LONG_TERM_UNEMPLOYMENT: N_("long-term unemployment"),
    ReferralReason.LONG_TERM_SICK_LEAVE: N_("long-term sick leave"),
    ReferralReason.FINANCIAL_AID: N_("receives financial aid"),
    ReferralReason.UNCLEAR_WORK_CAPACITY: N_("unclear work capacity"),
    ReferralReason.YOUNG_NOT_IN_EDUCATION: N_("young, not in work or education"),
    # in several lists
    "other": N_("other"),
    "unmapped": N_("unmapped (no common code)"),
}

PARTY_FIELDS: Final = frozenset(
    {"referring_party", "responsible_party", "responsible_parties", "provider"}
)
"""The fields whose values are parties (connector names or ``team``), not codes."""

_ORDER: Final = {field: position for position, field in enumerate(FIELD_NAMES)}
_YES_NO: Final = {True: N_("yes"), False: N_("no")}


def code_text(language: str, code: Any) -> str:
    """A code (or a list of codes) as words in ``language``; anything else as it is."""
    if isinstance(code, list | tuple):
        return ", ".join(code_text(language, item) for item in code)
    if isinstance(code, bool):
        return translations(language).gettext(_YES_NO[code])
    if isinstance(code, str) and code in CODE_NAMES:
        return translations(language).gettext(CODE_NAMES[code])
    return str(code)


def kind_text(language: str, kind: str) -> str:
    """A record's kind as a word in ``language`` (an unknown kind as it is)."""
    return translations(language).gettext(KIND_NAMES.get(kind, kind))


def field_text(language: str, field: str) -> str:
    """A field of a record's body as a name in ``language`` (an unknown field as it is)."""
    return translations(language).gettext(FIELD_NAMES.get(field, field))


def details_text(
    language: str,
    body: Mapping[str, Any],
    *,
    party_name: Callable[[str], str] | None = None,
) -> str:
    """A record's fields (but its kind) as "name: value, …", in the order of
    :data:`FIELD_NAMES`; empty fields left out. ``party_name`` names the parties of
    :data:`PARTY_FIELDS` (by default they are shown as their codes)."""
    shown = sorted(
        (field for field, value in body.items() if field != "kind" and value is not None),
        key=lambda field: _ORDER.get(field, len(_ORDER)),
    )

    def value(field: str) -> str:
        raw = body[field]
        if party_name is not None and field in PARTY_FIELDS:
            parties = raw if isinstance(raw, list | tuple) else [raw]
            return ", ".join(party_name(str(party)) for party in parties)
        return code_text(language, raw)

    return ", ".join(f"{field_text(language, field)}: {value(field)}" for field in shown)
