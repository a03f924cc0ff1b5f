"""Who should know a stored record, from the ``[[routing]]`` rules in the configuration."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.model.vocab import JOINT_TEAM
from hub.settings import RoutingRule
from hub.store.tables.sync import StoredRecord, Subscription

REFERRING_PARTY = "referring_party"
CASE_PARTIES = "case_parties"


def recipients(
    session: Session, rules: Sequence[RoutingRule], record: StoredRecord
) -> list[tuple[str, str]]:
    """``(recipient, purpose)`` pairs for ``record``; never its origin, never the joint team.

    The joint team needs no delivery: what the hub stores is what the team sees.
    """
    wanted: dict[str, str] = {}
    for rule in rules:
        if record.kind not in rule.kinds:
            continue
        for target in rule.to:
            if target == REFERRING_PARTY:
                names = referring_parties(session, record.participant_id)
            elif target == CASE_PARTIES:
                names = case_parties(session, record.participant_id)
            else:
                names = [target]
            for name in names:
                wanted.setdefault(name, rule.purpose)
    return sorted(
        (name, purpose)
        for name, purpose in wanted.items()
        if name not in (record.source, JOINT_TEAM)
    )


def case_parties(session: Session, participant_id: int) -> list[str]:
    """The authorities the person is registered with (their consent names them)."""
    return list(
        session.scalars(
            select(Subscription.party).where(
                Subscription.participant_id == participant_id, Subscription.active.is_(True)
            )
        )
    )


def referring_parties(session: Session, participant_id: int) -> list[str]:
    """Every party that referred the person to the joint team, per stored referrals."""
    bodies = session.scalars(
        select(StoredRecord.body).where(
            StoredRecord.participant_id == participant_id, StoredRecord.kind == "referral"
        )
    )
    return sorted({str(body["referring_party"]) for body in bodies})


def idempotency_key(record: StoredRecord, recipient: str, purpose: str) -> str:
    """The same record version to the same recipient always gets the same key.

    A re-run after a crash queues and pushes with the key it used before, so the
    authority can recognise the repeat; a changed record is a new version and a new key.
    """
    material = "\x1f".join(
        (record.source, record.source_id, record.payload_sha256, recipient, purpose)
    )
    return "evi-" + hashlib.sha256(material.encode()).hexdigest()[:60]
