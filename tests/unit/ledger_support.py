"""Ledger entries made up for the tests of the log's readers (CLI and web)."""

from __future__ import annotations

import hashlib

from hub.context import Hub
from hub.ledger.event import Action, LedgerEvent
from hub.ledger.writer import append_many


def decisions(hub: Hub, number: str, n: int, **fields: object) -> None:
    pseudonym = hub.keys.pseudonym(number)
    base = {
        "action": Action.DECISION,
        "decision": "permit",
        "actor": "job:sync",
        "origin": "af",
        "recipient": "team",
        "categories": ("identity", "plan"),
        "purpose": "coordination",
        "consent_id": "c-1",
        "consent_version": 1,
        "participant": pseudonym,
        "payload_sha256": hashlib.sha256(b"payload").hexdigest(),
        "correlation_id": "run-1",
    }
    base.update(fields)
    with hub.db.session() as session:
        append_many(session, [LedgerEvent(**base) for _ in range(n)])  # type: ignore[arg-type]
