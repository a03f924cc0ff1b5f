"""Ask the consent gate whether each person's records may be used for follow-up statistics.

Using a record for statistics is a disclosure from its origin to the joint team for the
purpose ``evaluation``. The gate is asked once per (person, origin, category, restricted
mark) — one decision covers all the person's records of that kind from that authority —
and each person's decisions are appended to the ledger together, in the caller's
transaction, by pseudonym only (:meth:`hub.consent.decisions.ParticipantGate.decide_many`).
Snapshots are loaded for many people at a time, not one query set per person.

A decision's payload digest is the record's own when it covers one record, else the
SHA-256 of the canonical JSON list of the records' digests, sorted: it fingerprints what
was used without putting anything of it in the ledger.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from hub.consent.decisions import DecisionRequest, ParticipantGate
from hub.consent.snapshots import load_snapshots
from hub.ledger.event import ActorRole
from hub.model.canonical import json_sha256
from hub.model.vocab import JOINT_TEAM, Purpose
from hub.stats.records import Fact
from hub.store.tables.participant import ParticipantRow

"""The role the ledger records for statistics decisions."""

_CHUNK = 500  # people whose snapshots are loaded at once


@dataclass(frozen=True, slots=True)
class Gated:
    """One person's facts split by the gate's answer."""

    permitted: tuple[Fact, ...]
    denied: tuple[Fact, ...]


def gate_facts(
    session: Session,
    people: Sequence[ParticipantRow],
    facts: Mapping[int, Sequence[Fact]],
    *,
    actor: str,
    at: datetime,
    correlation_id: str,
) -> dict[int, Gated]:
    """Decide, record and apply the gate's answer for each of ``people``'s facts."""
    gated: dict[int, Gated] = {}
    for start in range(0, len(people), _CHUNK):
        chunk = people[start : start + _CHUNK]
        snapshots = load_snapshots(session, chunk)
        for person in chunk:
            gate = ParticipantGate(session, person, snapshots[person.id])
            gated[person.id] = _decide(
                gate, facts[person.id], actor=actor, at=at, correlation_id=correlation_id
            )
    return gated


def _decide(
    gate: ParticipantGate,
    facts: Sequence[Fact],
    *,
    actor: str,
    at: datetime,
    correlation_id: str,
) -> Gated:
    groups: dict[tuple[str, str, bool], list[Fact]] = defaultdict(list)
    for fact in facts:
        groups[fact.gate_key].append(fact)
    requests = {
        (origin, category, restricted): DecisionRequest(
            origin,
            JOINT_TEAM,
            category,
            Purpose.EVALUATION.value,
            at,
            payload_sha256=_digest(group),
            restricted_origin=restricted,
        )
        for (origin, category, restricted), group in groups.items()
    }
    allowed = gate.permitted_keys(
        requests, actor=actor, role=ActorRole.STEERING_GROUP, correlation_id=correlation_id
    )
    return Gated(
        permitted=tuple(f for f in facts if f.gate_key in allowed),
        denied=tuple(f for f in facts if f.gate_key not in allowed),
    )


def _digest(facts: Sequence[Fact]) -> str:
    digests = sorted(f.payload_sha256 for f in facts)
    return digests[0] if len(digests) == 1 else json_sha256(digests)
