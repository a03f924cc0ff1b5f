"""Who should know a stored record, from the ``[[routing]]`` rules in the configuration."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.model.vocab import JOINT_TEAM
from hub.settings import RoutingRule
from hub.store.tables.sync import StoredRecord, Subscription

REFERRING_PARTY = "referring_party"
CASE_PARTIES = "case_parties"


class RoutingCache:
    """Per-person routing facts for one batch: case parties and referring parties.

    Loaded in bulk by :meth:`preload` after the batch's records are flushed, so a referral
    stored in the same batch already counts; neither changes while the batch is routed.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self._case: dict[int, list[str]] = {}
        self._referring: dict[int, list[str]] = {}

    def preload(self, participant_ids: set[int]) -> None:
        ids = sorted(participant_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            case: dict[int, list[str]] = {pid: [] for pid in chunk}
            for pid, party in self.session.execute(
                select(Subscription.participant_id, Subscription.party).where(
                    Subscription.participant_id.in_(chunk), Subscription.active.is_(True)
                )
            ):
                case[pid].append(party)
            referring: dict[int, set[str]] = {pid: set() for pid in chunk}
            for pid, party in self.session.execute(
                select(
                    StoredRecord.participant_id,
                    StoredRecord.body["referring_party"].as_string(),
                ).where(StoredRecord.participant_id.in_(chunk), StoredRecord.kind == "referral")
            ):
                referring[pid].add(str(party))
            self._case.update(case)
            self._referring.update({pid: sorted(v) for pid, v in referring.items()})

    def case_parties(self, participant_id: int) -> list[str]:
        if participant_id not in self._case:
            self._case[participant_id] = case_parties(self.session, participant_id)
        return self._case[participant_id]

    def referring_parties(self, participant_id: int) -> list[str]:
        if participant_id not in self._referring:
            self._referring[participant_id] = referring_parties(self.session, participant_id)
        return self._referring[participant_id]


def recipients(
    facts: RoutingCache,
    rules: Sequence[RoutingRule],
    record: StoredRecord,
    receivers: Mapping[str, frozenset[str]],
) -> list[tuple[str, str]]:
    """``(recipient, purpose)`` pairs for ``record``; never its origin, never the joint team.

    The joint team needs no delivery: what the hub stores is what the team sees.
    ``receivers`` maps each installed connector to the categories it can push; a party
    that cannot receive the record's category is left out rather than queued forever.
    """
    wanted: dict[str, str] = {}
    for rule in rules:
        if record.kind not in rule.kinds:
            continue
        for target in rule.to:
            if target == REFERRING_PARTY:
                names = facts.referring_parties(record.participant_id)
            elif target == CASE_PARTIES:
                names = facts.case_parties(record.participant_id)
            else:
                names = [target]
            for name in names:
                wanted.setdefault(name, rule.purpose)
    return sorted(
        (name, purpose)
        for name, purpose in wanted.items()
        if name not in (record.source, JOINT_TEAM)
        and record.category in receivers.get(name, frozenset())
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
    parties = session.scalars(
        select(StoredRecord.body["referring_party"].as_string()).where(
            StoredRecord.participant_id == participant_id, StoredRecord.kind == "referral"
        )
    )
    return sorted({str(party) for party in parties})


def idempotency_key(record: StoredRecord, recipient: str, purpose: str) -> str:
    """The same record version to the same recipient always gets the same key.

    A re-run after a crash queues and pushes with the key it used before, so the
    authority can recognise the repeat; a changed record is a new version and a new key.
    """
    material = "\x1f".join(
        (record.source, record.source_id, record.payload_sha256, recipient, purpose)
    )
    return "evi-" + hashlib.sha256(material.encode()).hexdigest()[:60]
