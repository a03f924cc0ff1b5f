"""The demo's synthetic caseload: consents, withdrawals and blocks for the sandbox people.

Each person of the sandbox population gets a profile drawn from the seed, so the same seed
always gives the same caseload. Consents are registered through the consent service with
paper-form evidence, as a caseworker's would be (in one batch, as `evi consent import`
does); no personal data is invented
here (the people are the sandboxes', whose numbers are Skatteverket's test numbers).
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hub.consent.service import ConsentService
from hub.context import Hub
from hub.model.consent import ConsentSubmission
from hub.model.identity import parse_identity
from hub.model.vocab import JOINT_TEAM, Category, Purpose

ACTOR = "evi-demo"
CASEWORKER = "demo-handläggare"

# profile -> share of the caseload
PROFILES: tuple[tuple[str, float], ...] = (
    ("full", 0.62),
    ("partial", 0.10),
    ("expired", 0.06),
    ("withdrawn", 0.06),
    ("withdrawn_fk", 0.04),
    ("blocked_health", 0.04),
    ("no_consent", 0.08),
)
ALL_CATEGORIES = tuple(c.value for c in Category)


@dataclass(frozen=True)
class DemoPerson:
    number: str
    protected: bool


def assign_profiles(people: Sequence[DemoPerson], seed: int) -> dict[str, list[DemoPerson]]:
    """Deterministic profile per person; the first protected person always consents fully."""
    rng = random.Random(f"evi-demo-caseload:{seed}")
    names = [name for name, _ in PROFILES]
    weights = [share for _, share in PROFILES]
    groups: dict[str, list[DemoPerson]] = {name: [] for name in names}
    protected_done = False
    for person in people:
        profile = rng.choices(names, weights)[0]
        if person.protected and not protected_done:
            profile, protected_done = "full", True
        groups[profile].append(person)
    return groups


def _submission(person: DemoPerson, profile: str, now: datetime, seed: int) -> ConsentSubmission:
    parties = ["kommun", "af", "fk", "region", JOINT_TEAM]
    categories: Sequence[str] = ALL_CATEGORIES
    purposes = [Purpose.COORDINATION.value, Purpose.EVALUATION.value]
    valid_from, valid_until = now - timedelta(days=30), now + timedelta(days=365)
    if profile == "partial":
        parties = ["kommun", "af", JOINT_TEAM]
        categories = [c for c in ALL_CATEGORIES if c != Category.HEALTH.value]
        purposes = [Purpose.COORDINATION.value]
    elif profile == "expired":
        valid_from, valid_until = now - timedelta(days=400), now - timedelta(days=35)
    form = hashlib.sha256(f"evi demo consent form {seed} {person.number[-4:]}".encode())
    return ConsentSubmission.model_validate(
        {
            "pnr": person.number,
            "parties": parties,
            "categories": list(categories),
            "purposes": purposes,
            "valid_from": valid_from,
            "valid_until": valid_until,
            "informed_by": CASEWORKER,
            "informed_at": valid_from,
            "evidence": {
                "kind": "paper",
                "document_sha256": form.hexdigest(),
                "witnessed_by": CASEWORKER,
            },
        }
    )


def register_caseload(hub: Hub, people: Sequence[DemoPerson], seed: int) -> Counter[str]:
    """Register every profile's consents, withdrawals and blocks; returns counts per profile."""
    service = ConsentService(hub)
    now = datetime.now(UTC)
    counts: Counter[str] = Counter()
    groups = assign_profiles(people, seed)
    submissions: list[ConsentSubmission] = []
    for profile, members in groups.items():
        counts[profile] += len(members)
        if profile != "no_consent":
            submissions.extend(_submission(person, profile, now, seed) for person in members)
    # One transaction for every consent; withdrawals and blocks follow, each as recorded.
    service.register_many(submissions, actor=ACTOR)
    for profile, members in groups.items():
        for person in members:
            identity = parse_identity(person.number)
            if profile == "withdrawn":
                service.withdraw(identity, actor=ACTOR)
            elif profile == "withdrawn_fk":
                service.withdraw(identity, actor=ACTOR, party="fk")
            elif profile == "blocked_health":
                service.block(identity, actor=ACTOR, category=Category.HEALTH)
    counts["protected_identity"] = sum(p.protected for p in people)
    return counts
