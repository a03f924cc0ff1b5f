"""The ledger entries of the consent registry (gate decisions: :mod:`hub.consent.decisions`).

One place for the registry's ledger vocabulary, so a privacy officer can read what each
entry means. The participant is always the pseudonym; the entry never holds the number,
the consent terms' text or the evidence.

    action               reason            decision  meaning
    consent_registered   registered        permit    a new consent, evidence verified
    consent_registered   amended           permit    a new version of a consent
    consent_registered   evidence_refused  deny      evidence failed; nothing stored
    consent_withdrawn    whole | partial   -         withdrawn from ``time`` on
    block_recorded       block_added       -         a block from ``time`` on
    block_recorded       block_lifted      -         a block ended at ``time``
    protection_changed   protected_identity_marked | protected_identity_lifted
                                           -         staff marked or lifted skyddad identitet

A withdrawal or block names its party as ``recipient`` and its category in ``categories``
(absent: any).
"""

from __future__ import annotations

from datetime import datetime

from hub.ledger.event import Action, LedgerEvent, Outcome


def registered(
    time: datetime,
    actor: str,
    pseudonym: str,
    consent_id: str,
    version: int,
    categories: tuple[str, ...],
) -> LedgerEvent:
    return LedgerEvent(
        time=time,
        action=Action.CONSENT_REGISTERED,
        decision="permit",
        reason="amended" if version > 1 else "registered",
        actor=actor,
        categories=tuple(sorted(categories)),
        consent_id=consent_id,
        consent_version=version,
        participant=pseudonym,
    )


def refused(
    time: datetime,
    actor: str,
    pseudonym: str,
    amends: str | None,
    categories: tuple[str, ...],
) -> LedgerEvent:
    return LedgerEvent(
        time=time,
        action=Action.CONSENT_REGISTERED,
        decision="deny",
        outcome=Outcome.MINOR_FAILURE,
        reason="evidence_refused",
        actor=actor,
        categories=tuple(sorted(categories)),
        consent_id=amends,
        participant=pseudonym,
    )


def withdrawn(
    time: datetime,
    actor: str,
    pseudonym: str,
    consent_id: str,
    up_to_version: int,
    party: str | None,
    category: str | None,
) -> LedgerEvent:
    return LedgerEvent(
        time=time,
        action=Action.CONSENT_WITHDRAWN,
        reason="whole" if party is None and category is None else "partial",
        recipient=party,
        actor=actor,
        categories=(category,) if category else (),
        consent_id=consent_id,
        consent_version=up_to_version,
        participant=pseudonym,
    )


def block(
    time: datetime,
    actor: str,
    pseudonym: str,
    party: str | None,
    category: str | None,
    *,
    lifted: bool = False,
) -> LedgerEvent:
    return LedgerEvent(
        time=time,
        action=Action.BLOCK_RECORDED,
        reason="block_lifted" if lifted else "block_added",
        recipient=party,
        actor=actor,
        categories=(category,) if category else (),
        participant=pseudonym,
    )


def protection(time: datetime, actor: str, pseudonym: str, *, protected: bool) -> LedgerEvent:
    return LedgerEvent(
        time=time,
        action=Action.PROTECTION_CHANGED,
        reason="protected_identity_marked" if protected else "protected_identity_lifted",
        actor=actor,
        participant=pseudonym,
    )
