"""Ask the consent gate whether each person's records may be used for follow-up statistics.

Using a record for statistics is a disclosure from its origin to the joint team for the
purpose ``evaluation``. The gate is asked once per (person, origin, category, restricted
mark) — one decision covers all the person's records of that kind from that authority —
by pseudonym only. Snapshots are loaded for many people at a time, not one query set per
person.

Deciding writes nothing: :func:`gate_facts` reads (in the caller's transaction, which may
be read-only) and returns each decision's ledger entry, person by person and in key order
within a person, the entries :meth:`hub.consent.decisions.ParticipantGate.permitted_keys`
would append. The caller appends them all before anything worked out from the decisions
is shown (:mod:`hub.stats.followup`), so the database write lock is held only for that
append, not while the records are read and the gate asked.

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

from hub.consent.decisions import DecisionRequest, decide_unrecorded
from hub.consent.snapshots import load_snapshots
from hub.ledger.event import ActorRole, LedgerEvent
from hub.model.canonical import json_sha256
from hub.model.vocab import JOINT_TEAM, Purpose
from hub.stats.records import Fact
from hub.store.tables.participant import ParticipantRow

_CHUNK = 500  # people whose snapshots are loaded at once


@dataclass(frozen=True, slots=True)
class Gated:
    """One person's facts split by the gate's answer."""

    permitted: tuple[Fact, ...]
    denied: tuple[Fact, ...]


@dataclass(frozen=True, slots=True)
class GateAnswers:
    """Every person's answer, and the ledger entries of the decisions behind them (to be
    appended, in this order, before any answer is used)."""

    by_person: dict[int, Gated]
    entries: list[LedgerEvent]


def gate_facts(
    session: Session,
    people: Sequence[ParticipantRow],
    facts: Mapping[int, Sequence[Fact]],
    *,
    actor: str,
    at: datetime,
    correlation_id: str,
) -> GateAnswers:
    """Decide the gate's answer for each of ``people``'s facts; writes nothing."""
    gated: dict[int, Gated] = {}
    entries: list[LedgerEvent] = []
    for start in range(0, len(people), _CHUNK):
        chunk = people[start : start + _CHUNK]
        snapshots = load_snapshots(session, chunk)
        for person in chunk:
            found = facts[person.id]
            allowed, events = decide_unrecorded(
                snapshots[person.id],
                person.pseudonym,
                _requests(found, at),
                actor=actor,
                role=ActorRole.STEERING_GROUP,
                correlation_id=correlation_id,
            )
            entries.extend(events)
            gated[person.id] = Gated(
                permitted=tuple(f for f in found if f.gate_key in allowed),
                denied=tuple(f for f in found if f.gate_key not in allowed),
            )
    return GateAnswers(gated, entries)


def _requests(facts: Sequence[Fact], at: datetime) -> dict[tuple[str, str, bool], DecisionRequest]:
    groups: dict[tuple[str, str, bool], list[Fact]] = defaultdict(list)
    for fact in facts:
        groups[fact.gate_key].append(fact)
    return {
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


def _digest(facts: Sequence[Fact]) -> str:
    digests = sorted(f.payload_sha256 for f in facts)
    return digests[0] if len(digests) == 1 else json_sha256(digests)
