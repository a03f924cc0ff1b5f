"""The person's own log extract (registerutdrag): every entry about them, in plain Swedish
and as JSON, each with its inclusion proof against a signed checkpoint.

This is the one place the person's personnummer appears: the extract is made for them.
It is never stored; the ledger records only that an extract was made (with the pseudonym).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.clock import swedish_local
from hub.ledger.checkpoint import Checkpoint
from hub.ledger.records import EntryRecord
from hub.model.identity import PersonalIdentity
from hub.text.times import minute_text

ACTIONS_SV = {
    "decision": "Beslut om utlämnande",
    "delivery": "Överföring till annan part",
    "inbound_refused": "Uppgift från myndighet avvisad",
    "inbound_stored": "Uppgift från myndighet mottagen",
    "view": "Handläggare visade dina uppgifter",
    "consent_registered": "Samtycke registrerat",
    "consent_withdrawn": "Samtycke återkallat",
    "block_recorded": "Spärr registrerad",
    "subscription": "Bevakning hos myndighet",
    "ledger_search": "Sökning i loggen",
    "ledger_export": "Export av loggen",
    "ledger_extract": "Registerutdrag",
    "ledger_purge": "Gallring av loggen",
    "records_purged": "Gallring av dina uppgifter från myndigheterna",
    "subject_access": "Registerutdrag över lagrade uppgifter",
    "key_rotated": "Byte av krypteringsnyckel",
    "consent_read": "Dina samtycken lästes",
    "protection_changed": "Skyddad identitet",
}
DECISIONS_SV = {"permit": "tillåtet", "deny": "nekat"}
OUTCOMES_SV = {
    "success": "genomfört",
    "minor_failure": "genomfört med mindre fel",
    "serious_failure": "misslyckades (allvarligt fel)",
    "major_failure": "misslyckades",
}
PARTIES_SV = {
    "kommun": "kommunen",
    "af": "Arbetsförmedlingen",
    "fk": "Försäkringskassan",
    "region": "regionen (hälso- och sjukvården)",
    "team": "samordningsteamet",
}
CATEGORIES_SV = {
    "identity": "identitetsuppgifter",
    "referral": "remiss",
    "assessment": "kartläggning",
    "plan": "planering",
    "intervention": "insatser",
    "benefit": "ersättning",
    "health": "hälsa",
    "outcome": "utfall",
}
PURPOSES_SV = {"coordination": "samverkan kring dig", "evaluation": "uppföljning och statistik"}
REASONS_SV = {
    # the gate's reasons (hub.consent.gate.Reason)
    "covered": "ditt samtycke omfattar det",
    "no_consent": "det finns inget samtycke",
    "expired": "samtycket har löpt ut",
    "withdrawn": "du har återkallat samtycket",
    "blocked": "en spärr hindrar det",
    "party_not_covered": "samtycket omfattar inte den myndigheten",
    "category_not_covered": "samtycket omfattar inte de uppgifterna",
    "purpose_not_covered": "samtycket omfattar inte det ändamålet",
    "protected_identity": "du har skyddad identitet",
    "restricted_origin": "uppgiften får inte lämnas vidare",
    # what else the log records
    "delivered": "mottagaren tog emot uppgiften",
    "duplicate": "mottagaren hade redan uppgiften",
    "refused": "mottagaren tog inte emot uppgiften",
    "registered": "samtycket registrerades",
    "amended": "samtycket ändrades",
    "whole": "hela samtycket",
    "partial": "en del av samtycket",
    "subscribed": "myndigheten ombads lämna uppgifter om dig",
    "cancelled": "myndigheten ombads sluta lämna uppgifter om dig",
    "block_added": "spärren registrerades",
    "block_lifted": "spärren hävdes",
    "not_a_participant": "EVI hub hade inga uppgifter om dig",
    "protected_identity_marked": "registrerad: ditt personnummer lämnas inte till någon",
    "protected_identity_lifted": "hävd",
}
"""A log entry's reason in words, the code after it; any other reason is shown as stored."""

_LOOKED_UP_SV = {
    "view": "Handläggare sökte på ditt personnummer",
    "subject_access": "Registerutdrag begärt på ditt personnummer",
    "consent_read": "Samtycken söktes på ditt personnummer",
}
"""The heading of a look-up by number that found no participant: nothing was shown."""


ROLES_SV = {
    "caseworker": "handläggare",
    "privacy_officer": "dataskyddsombud",
    "steering_group": "styrgrupp",
    "administrator": "administratör",
    "log-reviewer": "logggranskare",
}
ACTORS_SV = {
    "evi-sync": "EVI hub (den automatiska överföringen)",
    "evi-worker": "EVI hub (den automatiska överföringen)",
    "evi-demo": "EVI hub (en demonstration)",
}
_WORDED_REASONS = (
    (re.compile(r"shown (\d+) records?"), "handläggaren såg {0} uppgift(er) om dig"),
    (
        re.compile(r"registerutdrag: (\d+) stored records?, (\d+) consents?"),
        "registerutdrag med {0} lagrade uppgift(er) och {1} samtycke(n)",
    ),
    (re.compile(r"filters: .*"), "en granskare sökte i loggen"),
)
"""Reasons the log writes with counts or filters, in words for the person (the code, the
stored text, stays in the JSON version)."""


def _actor(doc: dict[str, Any]) -> str | None:
    actor = doc.get("actor")
    if not actor:
        return None
    name = ACTORS_SV.get(actor, str(actor))
    role = doc.get("role")
    return f"{name} ({ROLES_SV.get(role, role)})" if role else name


def _reason(code: str | None) -> str | None:
    if code in REASONS_SV:
        return f"{REASONS_SV[code]} ({code})"
    for pattern, words in _WORDED_REASONS:
        if code and (found := pattern.fullmatch(code)):
            return words.format(*found.groups())
    return code


def _party(code: str | None) -> str | None:
    return None if code is None else f"{PARTIES_SV.get(code, code)} ({code})"


@dataclass(frozen=True)
class ProvenEntry:
    record: EntryRecord
    proof: list[bytes]


@dataclass(frozen=True)
class Extract:
    identity: PersonalIdentity
    participant: str
    generated_at: datetime
    checkpoint: Checkpoint
    verifier_key: str
    entries: list[ProvenEntry]

    def as_json(self) -> dict[str, Any]:
        """The extract as JSON (documented in docs/ledger.md)."""
        return {
            "subject": {"personal_identity": self.identity.formatted()},
            "participant": self.participant,
            "generated_at": self.generated_at.isoformat(),
            "checkpoint": {
                "note": self.checkpoint.note,
                "tree_size": self.checkpoint.size,
                "root": base64.b64encode(self.checkpoint.root).decode(),
            },
            "verifier_key": self.verifier_key,
            "entries": [
                {
                    **item.record.export_line(),
                    "inclusion_proof": {
                        "leaf_index": item.record.seq,
                        "tree_size": self.checkpoint.size,
                        "hashes": [h.hex() for h in item.proof],
                    },
                }
                for item in self.entries
            ],
        }

    def as_text(self) -> str:
        """The extract in plain Swedish, for the person."""
        lines = [
            "REGISTERUTDRAG UR ÖVERFÖRINGSLOGGEN",
            "",
            f"Avser: {self.identity.formatted()}",
            f"Framtaget: {_generated(self.generated_at)}",
            f"Antal händelser: {len(self.entries)}",
            "",
            "Här är varje gång uppgifter om dig prövades, lämnades ut, togs emot eller visades",
            "inom En väg in, och vem som gjorde det. Uppgifternas innehåll finns inte i loggen,",
            "bara vad som hände.",
            "",
        ]
        for number, item in enumerate(self.entries, start=1):
            lines += self._entry_lines(number, item.record)
        lines += [
            "HUR DU KAN KONTROLLERA UTDRAGET",
            "",
            "Du, eller någon du litar på, kan kontrollera att ingen av händelserna ovan har",
            "ändrats eller tagits bort i efterhand. Så här går det till tekniskt:",
            "",
            "Varje händelse är ett löv i ett Merkleträd (RFC 9162). Loggens kontrollpunkt nedan",
            "är signerad med loggens nyckel; JSON-versionen av utdraget innehåller för varje",
            "händelse ett inklusionsbevis som visar att den finns i loggen och inte har ändrats.",
            "",
            f"Loggens kontrollpunkt (storlek {self.checkpoint.size}):",
            *("    " + line for line in self.checkpoint.note.rstrip("\n").split("\n")),
            "",
            f"Loggens publika nyckel: {self.verifier_key}",
            "",
        ]
        return "\n".join(lines)

    @staticmethod
    def _entry_lines(number: int, record: EntryRecord) -> list[str]:
        doc = record.document or {}
        title = ACTIONS_SV.get(record.action, record.action)
        if doc.get("reason") == "not_a_participant":  # a look-up that found no one
            title = _LOOKED_UP_SV.get(record.action, title)
        decided = record.action == "decision"
        if decided and doc.get("decision"):
            title += f": {DECISIONS_SV.get(doc['decision'], doc['decision'])}"
        outcome = doc.get("outcome")
        if decided or outcome == "success":
            outcome = None  # the decision says it; "genomfört" on every line says nothing
        lines = [f"{number}. {minute_text(record.time)} – {title}"]
        facts: list[tuple[str, str | None]] = [
            ("Från", _party(doc.get("origin"))),
            ("Till", _party(doc.get("recipient"))),
            (
                "Uppgifter",
                ", ".join(CATEGORIES_SV.get(c, c) for c in doc.get("categories") or []) or None,
            ),
            ("Ändamål", PURPOSES_SV.get(doc.get("purpose") or "", doc.get("purpose"))),
            (
                "Samtycke",
                f"{doc['consent_id']} version {doc.get('consent_version')}"
                if doc.get("consent_id")
                else None,
            ),
            ("Resultat", OUTCOMES_SV.get(outcome or "", outcome)),
            ("Skäl", _reason(doc.get("reason"))),
            ("Utfört av", _actor(doc)),
            ("Löpnummer i loggen", str(record.seq)),
        ]
        lines += [f"   {label}: {value}" for label, value in facts if value]
        lines.append("")
        return lines


def _generated(at: datetime) -> str:
    """When the extract was made, as its first lines say it (the repeated hour's note goes
    inside the one bracket)."""
    local, note = swedish_local(at)
    return f"{local:%Y-%m-%d %H:%M} (svensk tid{', ' + note if note else ''}, som alla tider här)"
