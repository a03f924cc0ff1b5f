"""Who should know a stored record, from the ``[[routing]]`` rules in the configuration."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import ConfigError
from hub.model.vocab import JOINT_TEAM
from hub.settings import RoutingRule
from hub.store.tables.sync import StoredRecord, Subscription

REFERRING_PARTY = "referring_party"
CASE_PARTIES = "case_parties"


class RoutedRecord(Protocol):
    """What routing reads of a record (a ``StoredRecord`` or a row about to be stored)."""

    @property
    def source(self) -> str: ...

    @property
    def source_id(self) -> str: ...

    @property
    def participant_id(self) -> int: ...

    @property
    def kind(self) -> str: ...

    @property
    def category(self) -> str: ...

    @property
    def payload_sha256(self) -> str: ...

    @property
    def updated_at(self) -> datetime: ...


class RoutingCache:
    """Per-person routing facts for one run: the case parties and the referring parties.

    :meth:`preload` runs for every batch, after the batch's records are written, and reads
    both facts once per run for each person the run has not met yet; after that, who
    referred a person is kept up to date with :meth:`add_referral` for the referrals the
    run itself stores. The case parties (active subscriptions) are settled for the whole
    run before any pull (see ``hub.sync.job``), so reading them once is reading them
    right; a referral or subscription written meanwhile by another connector's run counts
    from the next run on. Whoever is routed to, every transfer still passes the consent
    gate when it is queued and again when it is sent.
    """

    def __init__(self) -> None:
        self._case: dict[int, list[str]] = {}
        self._referring: dict[int, set[str]] = {}

    def preload(self, session: Session, participant_ids: set[int]) -> None:
        unknown = sorted(pid for pid in participant_ids if pid not in self._case)
        for start in range(0, len(unknown), 500):
            chunk = unknown[start : start + 500]
            case: dict[int, list[str]] = {pid: [] for pid in chunk}
            referring: dict[int, set[str]] = {pid: set() for pid in chunk}
            for pid, party in session.connection().execute(
                select(Subscription.participant_id, Subscription.party).where(
                    Subscription.participant_id.in_(chunk), Subscription.active.is_(True)
                )
            ):
                case[pid].append(party)
            # from the index alone (ix_record_referring_party), not each referral's body:
            # a person's records only grow
            for pid, referrer in session.connection().execute(
                select(StoredRecord.participant_id, StoredRecord.referring_party)
                .where(
                    StoredRecord.participant_id.in_(chunk),
                    StoredRecord.referring_party.is_not(None),
                )
                .distinct()
            ):
                referring[pid].add(str(referrer))
            self._case.update(case)
            self._referring.update(referring)

    def add_referral(self, participant_id: int, body: Mapping[str, object]) -> None:
        """Count a referral the run has just stored (``body`` as stored)."""
        party = body.get("referring_party")
        if party is not None and participant_id in self._referring:
            self._referring[participant_id].add(str(party))

    def case_parties(self, participant_id: int) -> list[str]:
        return self._case[participant_id]

    def referring_parties(self, participant_id: int) -> list[str]:
        return sorted(self._referring[participant_id])


def recipients(
    facts: RoutingCache,
    rules: Sequence[RoutingRule],
    record: RoutedRecord,
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


def check_rules(rules: Sequence[RoutingRule], parties: Sequence[str]) -> None:
    """Before a sync routes anything: every name in a rule's ``to`` is one of ``parties``
    (the hub's, :func:`hub.connector.registry.known_parties`) or a role. A misspelt name
    would otherwise route nothing, night after night, without a word."""
    names = [*parties, REFERRING_PARTY, CASE_PARTIES]
    for number, rule in enumerate(rules, start=1):
        unknown = [name for name in rule.to if name not in names]
        if unknown:
            raise ConfigError(
                f"routing rule {number} ({', '.join(rule.kinds)}): to {unknown[0]!r} is "
                f"neither a party of this hub nor a role; give one of {', '.join(names)} "
                "(`evi config show` shows the rules in force)"
            )


KEY_PREFIX = "evi2-"
"""Keys made as :func:`idempotency_key` makes them. Keys made before the record's time
was part of them start with ``evi-``; they stay with the outbox rows they were made for."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def idempotency_key(
    record: RoutedRecord, recipient: str, purpose: str, *, again: int | None = None
) -> str:
    """The same record version to the same recipient always gets the same key.

    A version is the record's body (its digest) and the time the authority gives it
    (``updated_at``, to the microsecond), so a re-run after a crash queues and pushes with
    the key it used before, and the authority can recognise the repeat; a changed record
    is a new version and gets a new key, also when it changes back to an earlier body
    (A → B → A) with a new time.

    ``again`` is for a version the outbox already holds a key for (the record went back
    to an earlier body at the same time, see ``Preparation._not_queued_before``): the
    number of transfers of the record already queued for ``recipient``, which grows with
    each one, so that version gets a key of its own each time it comes back.
    """
    # Microseconds since 1970: exact, and never overflows (a far-off time in UTC can).
    version = (record.updated_at - _EPOCH) // _MICROSECOND
    parts = [record.source, record.source_id, record.payload_sha256, str(version)]
    parts += [recipient, purpose]
    if again is not None:
        parts.append(f"again {again}")
    material = "\x1f".join(parts)
    return KEY_PREFIX + hashlib.sha256(material.encode()).hexdigest()[:59]


def rekeyed(key: str, *, with_number: bool) -> str:
    """The key for a transfer whose body changes between two attempts because the gate's
    answer on the person's number changed (an ``identity`` block, withdrawal or consent in
    between): an authority may already hold the earlier attempt under ``key``, and a body
    must never change under a key (it answers 422, and the transfer would be dead for
    good). Derived from ``key`` and the new answer, so an attempt repeated after a crash
    gets the same one."""
    material = "\x1f".join([key, "with number" if with_number else "pseudonym only"])
    return KEY_PREFIX + hashlib.sha256(material.encode()).hexdigest()[:59]
