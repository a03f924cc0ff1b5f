"""The canonical consent document: the exact bytes an electronic signature covers.

RFC 8785 (JSON Canonicalization Scheme) of::

    {"format": "evi-consent/1", "pnr": "YYYYMMDDNNNC", "amends": null | "<consent id>",
     "parties": [...], "categories": [...], "purposes": [...],
     "valid_from": "...Z", "valid_until": "...Z",
     "informed_by": "...", "informed_at": "...Z"}

Lists are sorted and free of repeats, times are RFC 3339 in UTC with ``Z``. The document
names the person so that a signature cannot be moved to someone else, and ``amends`` so
that a signed amendment cannot be replayed as a new consent. The hub never stores these
bytes (nor a plain hash of them: the number could be guessed back from it); it rebuilds
them from the stored terms and the encrypted number whenever they are needed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import rfc8785

from hub.model.consent import DOCUMENT_FORMAT, ConsentSubmission, ConsentTerms
from hub.model.identity import PersonalIdentity


def rfc3339(value: datetime) -> str:
    """``value`` in UTC as RFC 3339 with a ``Z`` (fractional seconds only when present)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def document_fields(
    identity: PersonalIdentity, terms: ConsentTerms, amends: UUID | str | None
) -> dict[str, Any]:
    """The members of the canonical document, before canonicalisation."""
    return {
        "format": DOCUMENT_FORMAT,
        "pnr": identity.number,
        "amends": str(amends) if amends is not None else None,
        "parties": sorted(terms.parties),
        "categories": sorted(c.value for c in terms.categories),
        "purposes": sorted(p.value for p in terms.purposes),
        "valid_from": rfc3339(terms.valid_from),
        "valid_until": rfc3339(terms.valid_until),
        "informed_by": terms.informed_by,
        "informed_at": rfc3339(terms.informed_at),
    }


def canonical_document(
    identity: PersonalIdentity, terms: ConsentTerms, amends: UUID | str | None = None
) -> bytes:
    """The bytes to sign (and to verify a signature against)."""
    return bytes(rfc8785.dumps(document_fields(identity, terms, amends)))


def submission_document(submission: ConsentSubmission) -> bytes:
    """The canonical document of a consent file."""
    return canonical_document(submission.pnr, submission, submission.amends)


def document_person(document: bytes) -> str | None:
    """The 12-digit number a canonical document names, or ``None`` if it names none.

    For evidence verifiers that must check the signer is the person.
    """
    try:
        data = json.loads(document)
    except ValueError:
        return None
    pnr = data.get("pnr") if isinstance(data, dict) else None
    return pnr if isinstance(pnr, str) else None


def terms_key(
    parties: Iterable[str],
    categories: Iterable[str],
    purposes: Iterable[str],
    valid_from: datetime,
    valid_until: datetime,
    informed_by: str,
    informed_at: datetime,
) -> tuple[object, ...]:
    """What makes two consents of one person the same consent given twice: the same
    terms, informed by the same person at the same instant (sets sorted)."""
    return (
        tuple(sorted(parties)),
        tuple(sorted(categories)),
        tuple(sorted(purposes)),
        valid_from,
        valid_until,
        informed_by,
        informed_at,
    )


def submission_terms(submission: ConsentSubmission) -> tuple[object, ...]:
    """:func:`terms_key` of a submission."""
    return terms_key(
        submission.parties,
        (c.value for c in submission.categories),
        (p.value for p in submission.purposes),
        submission.valid_from,
        submission.valid_until,
        submission.informed_by,
        submission.informed_at,
    )
