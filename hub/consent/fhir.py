"""FHIR R5 export of a person's consents: a ``collection`` Bundle of ``Consent`` resources.

One ``Consent`` per consent, describing its current version (``meta.versionId``). The
shape follows R5's nesting rule, where each level of ``provision`` is an exception to the
level above:

* ``decision = "deny"``: nothing is allowed unless a provision says so (deny by default);
* one provision per ordered party pair (origin -> recipient), i.e. a *permit*, with the
  origin as custodian (``CST``) and the recipient as information recipient (``IRCP``),
  action ``disclose``, the purposes and the information categories;
* nested provisions, i.e. *deny* again, for every block and partial withdrawal that
  touches the pair, with its period (and category, when it names one).

Code values, and why these (the library validates structure, not codes; the tests check
every code against these lists):

* ``status``: ``active``/``inactive`` (consent-state-codes; withdrawn and expired
  consents are ``inactive``).
* ``decision``: ``deny`` (consent-provision-type).
* ``category``: LOINC 59284-0 (consent document), as in the FHIR Consent examples.
* ``provision.action``: ``disclose`` (consentaction): the hub only ever discloses.
* ``provision.actor.role``: ``CST`` and ``IRCP`` (v3-ParticipationType).
* ``provision.purpose`` (v3-ActReason): ``coordination`` -> ``COC`` (coordination of
  care: organising the person's support across parties, which is what samverkan kring
  individen is); ``evaluation`` -> ``HQUALIMP`` (health quality improvement: follow-up and
  statistics for improving the joint effort). HL7 has no social-services purpose codes;
  these are the nearest that carry the same meaning.
* information categories: :data:`CATEGORY_SYSTEM`, a code system of this hub whose
  codes are exactly :class:`hub.model.vocab.Category`.

The person is identified by personnummer/samordningsnummer (Swedish OIDs), except with
protected identity, where only the pseudonym is given.
"""

from __future__ import annotations

from datetime import datetime
from itertools import permutations
from typing import Any

from hub.clock import SWEDEN
from hub.consent.document import rfc3339
from hub.consent.views import ConsentHistory, PersonConsents
from hub.model.vocab import Category

CATEGORY_SYSTEM = "https://evi-hub.example/fhir/CodeSystem/information-category"
PARTY_SYSTEM = "https://evi-hub.example/fhir/NamingSystem/party"
CONSENT_SYSTEM = "https://evi-hub.example/fhir/NamingSystem/consent"
PSEUDONYM_SYSTEM = "https://evi-hub.example/fhir/NamingSystem/participant-pseudonym"
PERSONNUMMER_SYSTEM = "urn:oid:1.2.752.129.2.1.3.1"
SAMORDNINGSNUMMER_SYSTEM = "urn:oid:1.2.752.129.2.1.3.3"
LOINC = "http://loinc.org"
CONSENT_DOCUMENT_LOINC = "59284-0"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
CONSENT_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"

PURPOSE_CODES: dict[str, tuple[str, str]] = {
    "coordination": ("COC", "coordination of care"),
    "evaluation": ("HQUALIMP", "health quality improvement"),
}
ROLE_CUSTODIAN = ("CST", "custodian")
ROLE_RECIPIENT = ("IRCP", "information recipient")
CATEGORY_CODES = frozenset(c.value for c in Category)


def export_bundle(person: PersonConsents) -> dict[str, Any]:
    """The person's consents as a FHIR R5 Bundle (plain JSON-ready data)."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": rfc3339(person.as_of),
        "entry": [
            {"fullUrl": f"urn:uuid:{c.consent_id}", "resource": consent_resource(person, c)}
            for c in person.consents
        ],
    }


def consent_resource(person: PersonConsents, consent: ConsentHistory) -> dict[str, Any]:
    v = consent.current
    subject = _subject(person)
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": consent.consent_id,
        "meta": {"versionId": str(v.version), "lastUpdated": rfc3339(v.recorded_at)},
        "identifier": [{"system": CONSENT_SYSTEM, "value": consent.consent_id}],
        "status": "active" if consent.status in ("active", "pending") else "inactive",
        "category": [{"coding": [{"system": LOINC, "code": CONSENT_DOCUMENT_LOINC}]}],
        "subject": subject,
        # a FHIR date has no zone: the day in Sweden, where the consent was recorded
        "date": v.recorded_at.astimezone(SWEDEN).date().isoformat(),
        "period": {"start": rfc3339(v.valid_from), "end": rfc3339(v.valid_until)},
        "grantor": [subject],
        "grantee": [_party(p) for p in v.parties],
        "verification": [
            {
                "verified": True,
                "verificationType": {"text": f"evidence: {v.evidence_kind}"},
                "verificationDate": [rfc3339(v.recorded_at)],
            }
        ],
        "regulatoryBasis": [
            {"text": "Samtycke enligt OSL 12 kap. 2 § och GDPR art. 6.1 a och art. 7"}
        ],
        "decision": "deny",
        "provision": [
            _pair_provision(person, consent, origin, recipient)
            for origin, recipient in permutations(v.parties, 2)
        ],
    }
    return resource


def _subject(person: PersonConsents) -> dict[str, Any]:
    if person.protected_identity:
        return {"identifier": {"system": PSEUDONYM_SYSTEM, "value": person.pseudonym}}
    system = (
        SAMORDNINGSNUMMER_SYSTEM if person.identity.is_coordination_number else PERSONNUMMER_SYSTEM
    )
    return {"identifier": {"system": system, "value": person.identity.number}}


def _party(party: str) -> dict[str, Any]:
    return {"identifier": {"system": PARTY_SYSTEM, "value": party}, "display": party}


def _coding(system: str, code_display: tuple[str, str]) -> dict[str, Any]:
    code, display = code_display
    return {"system": system, "code": code, "display": display}


def _category(category: str) -> dict[str, Any]:
    return {"coding": [{"system": CATEGORY_SYSTEM, "code": category}]}


def _period(start: datetime, end: datetime | None) -> dict[str, str]:
    period = {"start": rfc3339(start)}
    if end is not None:
        period["end"] = rfc3339(end)
    return period


def _pair_provision(
    person: PersonConsents, consent: ConsentHistory, origin: str, recipient: str
) -> dict[str, Any]:
    v = consent.current
    provision: dict[str, Any] = {
        "actor": [
            {
                "role": {"coding": [_coding(PARTICIPATION_TYPE, ROLE_CUSTODIAN)]},
                "reference": _party(origin),
            },
            {
                "role": {"coding": [_coding(PARTICIPATION_TYPE, ROLE_RECIPIENT)]},
                "reference": _party(recipient),
            },
        ],
        "action": [{"coding": [{"system": CONSENT_ACTION, "code": "disclose"}]}],
        "purpose": [_coding(ACT_REASON, PURPOSE_CODES[p]) for p in v.purposes],
        "code": [_category(c) for c in v.categories],
    }
    exceptions: list[dict[str, Any]] = []
    for block in person.blocks:
        if block.party in (None, origin, recipient) and _overlaps(
            block.valid_from, block.valid_until, v.valid_from, v.valid_until
        ):
            exceptions.append(_deny(block.valid_from, block.valid_until, block.category))
    for w in consent.partial_withdrawals:
        if w.up_to_version >= v.version and w.party in (None, origin, recipient):
            exceptions.append(_deny(w.at, None, w.category))
    if exceptions:
        provision["provision"] = exceptions
    return provision


def _deny(start: datetime, end: datetime | None, category: str | None) -> dict[str, Any]:
    nested: dict[str, Any] = {"period": _period(start, end)}
    if category is not None:
        nested["code"] = [_category(category)]
    return nested


def _overlaps(
    a_from: datetime, a_until: datetime | None, b_from: datetime, b_until: datetime
) -> bool:
    return a_from < b_until and (a_until is None or b_from < a_until)
