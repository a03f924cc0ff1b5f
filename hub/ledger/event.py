"""What one ledger entry says (FHIR AuditEvent / IHE BALP shaped).

Producers build a :class:`LedgerEvent` and hand it to the one writer
(:func:`hub.ledger.writer.append`). Never put personal data in an event: the participant
is their pseudonym, the payload only its SHA-256.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ON_BEHALF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,47}")
"""A name given with ``--actor``: no spaces (so `` via `` is never part of it), at most 48
characters (with `` via cli:<user>`` it fits the 100 characters a consent row keeps);
matched whole (``fullmatch``)."""

IDENTITY_NUMBER = re.compile(r"\d{6}[-+]?\d{4}")
"""What a personnummer or samordningsnummer looks like inside a name: such a name would
put the number into the log, so it is refused (and never repeated in the error)."""


class Action(StrEnum):
    DECISION = "decision"  # the gate decided (permit or deny)
    DELIVERY = "delivery"  # a push to an authority was attempted (outcome says how it went)
    INBOUND_REFUSED = "inbound_refused"  # a record arrived for someone without covering consent
    INBOUND_STORED = "inbound_stored"  # a record was accepted from an authority
    VIEW = "view"  # a caseworker viewed a person
    CONSENT_REGISTERED = "consent_registered"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    BLOCK_RECORDED = "block_recorded"
    SUBSCRIPTION = "subscription"  # a person registered with / cancelled at an authority
    LEDGER_SEARCH = "ledger_search"
    LEDGER_EXPORT = "ledger_export"
    LEDGER_EXTRACT = "ledger_extract"
    LEDGER_PURGE = "ledger_purge"  # retention removed the bytes of old entries
    ACCESS_CHANGED = "access_changed"  # a web user was added, disabled or given a new token
    RECORDS_PURGED = "records_purged"  # retention removed a person's stored records
    SUBJECT_ACCESS = "subject_access"  # an extract of what is stored about a person was made
    KEY_ROTATED = "key_rotated"  # an encryption key was replaced and its ciphertexts rewritten
    CONSENT_READ = "consent_read"  # a person's consents were shown or exported, or all listed
    CONNECTOR_CHANGED = "connector_changed"  # options set or unset, enabled or disabled
    PROTECTION_CHANGED = "protection_changed"  # staff marked or lifted a protected identity
    LOG_RESTORED = "log_restored"  # the database was restored; witness copies superseded


class ActorRole(StrEnum):
    """The ``role`` a ledger entry names: the one list, so a privacy officer's search by role
    finds every entry of it (the web's user roles are the first three)."""

    CASEWORKER = "caseworker"  # viewed a person's status
    PRIVACY_OFFICER = "privacy_officer"  # searched the log, made a register extract
    STEERING_GROUP = "steering_group"  # asked for follow-up statistics
    ADMINISTRATOR = "administrator"  # web access, purges, key rotation, reading consents
    LOG_REVIEWER = "log-reviewer"  # read or purged the log from the CLI


class Outcome(StrEnum):
    """FHIR AuditEvent outcome, by name."""

    SUCCESS = "success"
    MINOR_FAILURE = "minor_failure"
    SERIOUS_FAILURE = "serious_failure"
    MAJOR_FAILURE = "major_failure"


class LedgerEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    action: Action
    decision: Literal["permit", "deny"] | None = None
    outcome: Outcome = Outcome.SUCCESS
    reason: str | None = None
    origin: str | None = None
    recipient: str | None = None
    actor: str
    role: str | None = None
    purpose: str | None = None
    categories: tuple[str, ...] = ()
    consent_id: str | None = None
    consent_version: int | None = None
    payload_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    participant: str | None = Field(default=None, description="pseudonym, never the number")
    correlation_id: str | None = None

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("ledger times must be timezone-aware")
        return value.astimezone(UTC)
