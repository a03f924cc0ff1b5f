"""The ledger as FHIR R5 AuditEvent resources (IHE BALP shaped), for `evi log export --format fhir`.

Built as plain JSON so the hub needs no FHIR library at run time; the tests validate the
output with ``fhir.resources``. The participant appears only as the pseudonym identifier
(system ``urn:evi-hub:pseudonym``), never as a personnummer. Each AuditEvent also carries
the exact leaf bytes (``entity.detail`` "leaf"), so the export can be tied back to the tree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from hub.ledger.event import Action
from hub.ledger.records import EntryRecord

DCM = "http://dicom.nema.org/resources/ontology/DCM"
OUTCOME_SYSTEM = "http://terminology.hl7.org/CodeSystem/audit-event-outcome"
ACTION_SYSTEM = "urn:evi-hub:ledger-action"
PARTY_SYSTEM = "urn:evi-hub:party"
ACTOR_SYSTEM = "urn:evi-hub:actor"
PSEUDONYM_SYSTEM = "urn:evi-hub:pseudonym"
PURPOSE_SYSTEM = "urn:evi-hub:purpose"
LEDGER_SYSTEM = "urn:evi-hub:ledger-seq"

_OUTCOME = {"success": "0", "minor_failure": "4", "serious_failure": "8", "major_failure": "12"}

# (FHIR AuditEvent.action C/R/U/D/E, DICOM event category code and display)
_KIND: dict[str, tuple[str, str, str]] = {
    Action.DECISION: ("E", "110113", "Security Alert"),
    Action.DELIVERY: ("R", "110106", "Export"),
    Action.INBOUND_REFUSED: ("C", "110107", "Import"),
    Action.INBOUND_STORED: ("C", "110107", "Import"),
    Action.VIEW: ("R", "110110", "Patient Record"),
    Action.CONSENT_REGISTERED: ("C", "110110", "Patient Record"),
    Action.CONSENT_WITHDRAWN: ("U", "110110", "Patient Record"),
    Action.BLOCK_RECORDED: ("C", "110110", "Patient Record"),
    Action.SUBSCRIPTION: ("E", "110110", "Patient Record"),
    Action.LEDGER_SEARCH: ("E", "110112", "Query"),
    Action.LEDGER_EXPORT: ("R", "110106", "Export"),
    Action.LEDGER_EXTRACT: ("R", "110106", "Export"),
    Action.LEDGER_PURGE: ("D", "110100", "Application Activity"),
    Action.ACCESS_CHANGED: ("U", "110137", "User Security Attributes Changed"),
    Action.RECORDS_PURGED: ("D", "110110", "Patient Record"),
    Action.SUBJECT_ACCESS: ("R", "110106", "Export"),
    Action.KEY_ROTATED: ("U", "110129", "Security Configuration"),
    Action.CONSENT_READ: ("R", "110110", "Patient Record"),
    Action.CONNECTOR_CHANGED: ("U", "110129", "Security Configuration"),
    Action.PROTECTION_CHANGED: ("U", "110110", "Patient Record"),
    Action.LOG_RESTORED: ("U", "110100", "Application Activity"),
}


def _ident(system: str, value: str) -> dict[str, Any]:
    return {"identifier": {"system": system, "value": value}}


def _detail(kind: str, key: str, value: Any) -> dict[str, Any]:
    return {"type": {"text": kind}, key: value}


def audit_event(record: EntryRecord) -> dict[str, Any]:
    """One AuditEvent for one ledger entry."""
    crud, dcm_code, dcm_display = _KIND.get(record.action, ("E", "110100", "Application Activity"))
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": f"ledger-{record.seq}",
        "category": [{"coding": [{"system": DCM, "code": dcm_code, "display": dcm_display}]}],
        "code": {"coding": [{"system": ACTION_SYSTEM, "code": record.action}]},
        "action": crud,
        "recorded": record.field("time"),
        "source": {"observer": {"display": "EVI hub"}},
    }
    entity: dict[str, Any] = {"what": _ident(LEDGER_SYSTEM, str(record.seq))}
    if record.document is None:
        event["agent"] = [{"who": {"display": "(purged)"}}]
        entity["detail"] = [_detail("purged", "valueBoolean", True)]
        event["entity"] = [entity]
        return event
    doc = record.document
    outcome: dict[str, Any] = {"code": {"system": OUTCOME_SYSTEM, "code": _OUTCOME[doc["outcome"]]}}
    if doc.get("reason"):
        outcome["detail"] = [{"text": doc["reason"]}]
    event["outcome"] = outcome
    if doc.get("purpose"):
        event["authorization"] = [{"coding": [{"system": PURPOSE_SYSTEM, "code": doc["purpose"]}]}]
    if doc.get("participant"):
        event["patient"] = _ident(PSEUDONYM_SYSTEM, doc["participant"])
    actor: dict[str, Any] = {"who": _ident(ACTOR_SYSTEM, doc["actor"]), "requestor": True}
    if doc.get("role"):
        actor["role"] = [{"text": doc["role"]}]
    agents = [actor]
    for field, code, display in (
        ("origin", "110153", "Source Role ID"),
        ("recipient", "110152", "Destination Role ID"),
    ):
        if doc.get(field):
            agents.append(
                {
                    "type": {"coding": [{"system": DCM, "code": code, "display": display}]},
                    "who": _ident(PARTY_SYSTEM, doc[field]),
                    "requestor": False,
                }
            )
    event["agent"] = agents
    details = [_detail("leaf", "valueBase64Binary", record.export_line()["leaf"])]
    if doc.get("decision"):
        details.append(_detail("decision", "valueString", doc["decision"]))
    details += [_detail("category", "valueString", c) for c in doc.get("categories") or []]
    if doc.get("consent_id"):
        details.append(_detail("consent_id", "valueString", doc["consent_id"]))
    if doc.get("consent_version") is not None:
        details.append(_detail("consent_version", "valueInteger", doc["consent_version"]))
    if doc.get("payload_sha256"):
        details.append(_detail("payload_sha256", "valueString", doc["payload_sha256"]))
    if doc.get("correlation_id"):
        details.append(_detail("correlation_id", "valueString", doc["correlation_id"]))
    entity["detail"] = details
    event["entity"] = [entity]
    return event


def bundle_chunks(records: Iterable[EntryRecord]) -> Iterator[str]:
    """A FHIR ``collection`` Bundle of AuditEvents as text pieces, so exports of millions of
    entries stream instead of being built in memory."""
    yield '{"resourceType":"Bundle","type":"collection","entry":['
    first = True
    for record in records:
        piece = json.dumps({"resource": audit_event(record)}, ensure_ascii=False)
        yield piece if first else "," + piece
        first = False
    yield "]}\n"
