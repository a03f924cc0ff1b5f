"""The shared vocabulary: parties, information categories and purposes (see DESIGN.md)."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator

JOINT_TEAM = "team"
"""The joint team (samordningsteamet) as a party: recipient of referrals and status."""

BUILTIN_PARTIES = ("kommun", "af", "fk", "region", JOINT_TEAM)
"""The four built-in authorities' connector names and the joint team. Third-party
connectors add their own names; a party is any connector name or ``team``."""

PARTY = re.compile(r"^[a-z][a-z0-9_-]{1,31}$")


def party_name(value: str) -> str:
    """``value`` if it is a party's name; else ValueError saying what one is (not ``value``)."""
    if not PARTY.match(value):
        raise ValueError(
            "a party is a connector name or 'team': lowercase letters, digits, '-' or '_', "
            "2 to 32 characters"
        )
    return value


Party = Annotated[str, AfterValidator(party_name)]


class Category(StrEnum):
    """Information categories a consent can name."""

    IDENTITY = "identity"
    REFERRAL = "referral"
    ASSESSMENT = "assessment"
    PLAN = "plan"
    INTERVENTION = "intervention"
    BENEFIT = "benefit"
    HEALTH = "health"
    OUTCOME = "outcome"


class Purpose(StrEnum):
    COORDINATION = "coordination"  # samverkan kring individen
    EVALUATION = "evaluation"  # uppföljning/statistik
