"""A small caseload of the caseworker-view tests: one consenting person, one without; and
the ways a caseworker's party can come to see nothing of a person (:func:`hide`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from record_support import add_record
from test_consent_support import Clock, paper_submission, skatteverket_numbers

from hub.consent.service import ConsentService
from hub.context import Hub
from hub.model.identity import parse_identity
from hub.store.participants import ParticipantRepository

PNR, OTHER, STRANGER = skatteverket_numbers(3)
AT = datetime(2025, 6, 1, 12, tzinfo=UTC)

RECORDS: list[tuple[str, str, str, dict[str, Any], bool]] = [
    # (origin, kind, category, body, restricted)
    (
        "kommun",
        "referral",
        "referral",
        {"received_on": "2025-03-01", "referring_party": "kommun", "reason": "financial_aid"},
        False,
    ),
    ("af", "benefit", "benefit", {"start": "2025-04-01", "type": "aktivitetsstod"}, False),
    ("fk", "benefit", "benefit", {"start": "2025-02-01", "type": "sjukpenning"}, False),
    ("region", "health", "health", {"ongoing_treatment_contact": True}, False),
    ("kommun", "benefit", "benefit", {"start": "2025-01-01", "type": "forsorjningsstod"}, True),
]


def store_records(hub: Hub, number: str) -> None:
    now = datetime(2025, 5, 1, tzinfo=UTC)
    with hub.db.session() as session:
        person = ParticipantRepository(session, hub.keys).ensure(parse_identity(number))
        for i, (origin, kind, category, body, restricted) in enumerate(RECORDS):
            add_record(
                session,
                person.id,
                origin=origin,
                source_id=f"{number[-4:]}-{i}",
                kind=kind,
                category=category,
                body={"kind": kind, **body},
                at=now + timedelta(hours=i),
                restricted=restricted,
            )


def register_caseload(service: ConsentService, hub: Hub, valid_until: str) -> None:
    """PNR consents to kommun, af, fk and the team sharing referral and benefit facts
    until ``valid_until``; OTHER has records but no consent."""
    service.register(
        paper_submission(
            PNR,
            parties=["kommun", "af", "fk", "team"],
            categories=["referral", "benefit"],
            valid_until=valid_until,
        ),
        actor="test",
    )
    store_records(hub, PNR)
    store_records(hub, OTHER)


def mark_protected(hub: Hub, number: str) -> None:
    """The person has skyddad identitet (as an authority marks it)."""
    with hub.db.session() as session:
        ParticipantRepository(session, hub.keys).ensure(
            parse_identity(number), protected_identity=True
        )


HIDDEN = ["not_named", "withdrawn", "expired", "blocked", "protected_not_named", "no_consent"]
"""The ways the gate comes to let a party see none of a person's records."""


def hide(case: str, hub: Hub, clock: Clock) -> tuple[str, str]:
    """The caseload (on the real clock) with ``case`` done: (the number, the party whose
    caseworker may now see nothing of that person, though the hub holds records)."""
    service = ConsentService(hub, clock=clock)
    register_caseload(
        service, hub, "2025-06-01T00:00:00Z" if case == "expired" else "2099-01-01T00:00:00Z"
    )
    clock.now = datetime.now(UTC) - timedelta(seconds=1)
    person = parse_identity(PNR)
    if case == "withdrawn":  # the whole consent
        service.withdraw(person, actor="test")
    elif case == "blocked":
        service.block(person, actor="test", party="af")
    elif case == "protected_not_named":
        mark_protected(hub, PNR)
    elif case == "no_consent":
        return OTHER, "team"
    # region: not named by the consent, though it holds a health record about the person
    return PNR, "region" if case in ("not_named", "protected_not_named") else "af"
