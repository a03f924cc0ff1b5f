"""The register extract (:mod:`hub.casework.held`) as plain Swedish text, for the person.

Field names, record kinds and codes are the words the pages use (:mod:`hub.text.records`),
parties, categories and purposes the transfer log extract's; times are Swedish time.
"""

from __future__ import annotations

import json
import textwrap
from datetime import datetime
from typing import TYPE_CHECKING, Final

from cryptography.x509.oid import NameOID

from hub.clock import SWEDEN, swedish_local
from hub.consent.receipt import render_receipt
from hub.ledger.extract import CATEGORIES_SV, PARTIES_SV, PURPOSES_SV
from hub.sync.outbox import DEAD
from hub.text.records import details_text, kind_text
from hub.text.terminal import shown
from hub.text.times import minute_text

if TYPE_CHECKING:
    from hub.casework.held import (
        HeldBlock,
        HeldConsentVersion,
        HeldData,
        HeldEvidence,
        HeldTransfer,
        HeldWithdrawal,
    )


def _generated(at: datetime) -> str:
    local, note = swedish_local(at)
    return f"{local:%Y-%m-%d %H:%M} (svensk tid{', ' + note if note else ''})"


def extract_text(held: HeldData) -> str:
    """The extract in plain Swedish, for the person."""
    protected = "ja" if held.consents.protected_identity else "nej"
    lines = [
        "REGISTERUTDRAG: UPPGIFTER OM DIG I EN VÄG IN",
        "",
        f"Avser: {held.identity.formatted()}",
        f"Framtaget: {_generated(held.generated_at)}",
        f"Skyddad identitet: {protected}",
        f"Kön och födelseår (ur personnumret, för statistik): "
        f"{'kvinna' if held.gender == 'female' else 'man'}, {held.birth_year}",
        "",
        "MYNDIGHETER SOM HAR OMBETTS ATT LÄMNA UPPGIFTER OM DIG",
        "",
    ]
    for s in held.subscriptions:
        state = "sedan" if s.active else "avslutat"
        changed = s.changed_at.astimezone(SWEDEN).date().isoformat()
        lines.append(f"  {_party(s.party)}: {state} {changed}")
    if not held.subscriptions:
        lines.append("  inga")
    lines += ["", f"UPPGIFTER SOM MYNDIGHETERNA HAR LÄMNAT OM DIG ({len(held.records)})", ""]
    for number, r in enumerate(held.records, start=1):
        day = r.updated_at.astimezone(SWEDEN).date().isoformat()
        lines.append(f"{number}. {day} från {_party(r.origin)}: {kind_text('sv', r.kind)}")
        details = details_text("sv", r.body, party_name=_party)
        if details:
            lines += _wrapped(details, "   ")
        for code in r.unmapped:  # the authority's own text: shown escaped where unprintable
            lines += _wrapped(
                f'originalkoden från {_party(r.origin)}: "{shown(code.get("code"))}" i fältet '
                f'"{shown(code.get("field"))}" (saknar motsvarighet bland de gemensamma koderna)',
                "   ",
            )
        if r.restricted:
            lines.append("   (hämtad med stöd av lag för ett enda ändamål; lämnas inte vidare)")
    if not held.records:
        lines.append("  inga")
    lines += [
        "",
        f"UPPGIFTER OM DIG SOM SKA LÄMNAS UT MEN ÄNNU INTE HAR SKICKATS "
        f"({len(held.pending_transfers)})",
        "",
        *_transfer_lines(held.pending_transfers),
        "",
        "Vilka uppgifter som har lämnats ut, till vem och när finns i överföringsloggen:",
        "be om ett utdrag ur den också.",
    ]
    if held.consent_versions or held.blocks:
        lines += ["", *_stored_consent_lines(held)]
    lines += [
        "",
        render_receipt(held.consents).rstrip("\n")
        if held.consents.consents
        else "SAMTYCKEN\n\n  inga registrerade",
    ]
    return "\n".join(lines) + "\n"


def _party(code: str) -> str:
    return PARTIES_SV.get(code, code)


def _category(code: str) -> str:
    return CATEGORIES_SV.get(code, code)


def _wrapped(text: str, indent: str, width: int = 92) -> list[str]:
    return textwrap.wrap(
        text, width, initial_indent=indent, subsequent_indent=indent + "  ", break_on_hyphens=False
    ) or [indent]


def _transfer_lines(transfers: tuple[HeldTransfer, ...]) -> list[str]:
    lines: list[str] = []
    for t in transfers:
        which = f"uppgift {t.record_number}" if t.record_number else "en uppgift"
        lines += _wrapped(
            f"{which} ({_category(t.category)} från {_party(t.origin)}) till "
            f"{_party(t.recipient)}, för {PURPOSES_SV.get(t.purpose, t.purpose)}",
            "  ",
        )
        if t.status == DEAD:
            state = (
                f"lades i kö {minute_text(t.queued_at)} men gick inte att skicka efter "
                f"{t.attempts} "
                "försök; skickas bara om den som ansvarar för EVI hub försöker igen"
            )
        else:
            state = f"i kö sedan {minute_text(t.queued_at)}"
        lines += _wrapped(state, "    ")
    return lines or ["  inga"]


NAME_ATTRIBUTES: Final = {
    # X.500 attribute → (the JSON's name, the text's Swedish)
    NameOID.COMMON_NAME: ("commonName", "namn"),
    NameOID.GIVEN_NAME: ("givenName", "förnamn"),
    NameOID.SURNAME: ("surname", "efternamn"),
    NameOID.SERIAL_NUMBER: ("serialNumber", "serienummer"),  # in a Swedish e-ID: the number
    NameOID.PSEUDONYM: ("pseudonym", "pseudonym"),
    NameOID.TITLE: ("title", "titel"),
    NameOID.EMAIL_ADDRESS: ("emailAddress", "e-post"),
    NameOID.ORGANIZATION_NAME: ("organizationName", "organisation"),
    NameOID.ORGANIZATIONAL_UNIT_NAME: ("organizationalUnitName", "avdelning"),
    NameOID.ORGANIZATION_IDENTIFIER: ("organizationIdentifier", "organisationsnummer"),
    NameOID.LOCALITY_NAME: ("localityName", "ort"),
    NameOID.STATE_OR_PROVINCE_NAME: ("stateOrProvinceName", "län"),
    NameOID.COUNTRY_NAME: ("countryName", "land"),
}
_ATTRIBUTE_SV: Final = dict(NAME_ATTRIBUTES.values())


def _name_text(parts: tuple[tuple[str, str], ...]) -> str:
    return "; ".join(f"{_ATTRIBUTE_SV.get(a, a)}: {v}" for a, v in parts) or "(inget namn)"


def _evidence_lines(evidence: HeldEvidence) -> list[str]:
    stored = evidence.stored
    if stored is None:
        return _wrapped(
            "Bevis: sparat krypterat, men det gick inte att öppna med EVI hubs nycklar; den som "
            "ansvarar för EVI hub behöver se över nycklarna innan utdraget lämnas ut.",
            "  ",
        )
    lines: list[str] = []
    if evidence.kind == "paper":
        lines.append("  Bevis: en underskriven samtyckesblankett på papper, inskannad")
        lines.append(f"    bevittnad av: {stored.get('witnessed_by')}")
        if stored.get("witnessed_at"):
            witnessed = datetime.fromisoformat(str(stored["witnessed_at"]).replace("Z", "+00:00"))
            lines.append(f"    bevittnad: {minute_text(witnessed)}")
        lines.append(
            f"    kontrollsumma (SHA-256) av den inskannade blanketten: "
            f"{stored.get('document_sha256')}"
        )
        lines.append("    (själva blanketten sparas inte i EVI hub, bara kontrollsumman)")
    elif evidence.kind == "signature":
        lines.append("  Bevis: din elektroniska underskrift av samtycket")
        for index, cert in enumerate(evidence.certificates):
            whose = "ditt certifikat" if index == 0 else f"certifikat {index + 1} i kedjan"
            lines += _wrapped(f"{whose}: {_name_text(cert.subject)}", "    ")
            lines += _wrapped(f"utfärdat av: {_name_text(cert.issuer)}", "      ")
            valid = f"{minute_text(cert.not_before)} till {minute_text(cert.not_after)}"
            lines.append(f"      giltigt {valid}")
            lines.append(f"      certifikatets serienummer: {cert.serial_number}")
            lines.append(f"      fingeravtryck (SHA-256): {cert.sha256}")
        unread = len(stored.get("certificates") or []) - len(evidence.certificates)
        if unread:
            lines.append(f"    {unread} certifikat kunde inte läsas ut; de finns i JSON-formen")
        lines.append("    underskriften, kodad som base64:")
        lines += textwrap.wrap(
            str(stored.get("signature")), 76, initial_indent="      ", subsequent_indent="      "
        )
    else:
        lines.append(
            f'  Bevis: av slaget "{evidence.kind}", som ett tillägg till EVI hub kontrollerar'
        )
        data = stored.get("data") or {}
        for key in sorted(data):
            lines += _wrapped(
                f"{key}: {json.dumps(data[key], ensure_ascii=False, sort_keys=True)}", "    "
            )
    lines += _wrapped(
        f"Kontrollen när samtycket registrerades ({evidence.verifier}) godkände beviset: "
        f"{evidence.detail} (kontrollens egen anteckning, på engelska)",
        "  ",
    )
    return lines


def _version_lines(v: HeldConsentVersion) -> list[str]:
    return [
        f"Samtycke {v.consent_id}, version {v.version}",
        *_wrapped(f"Parter: {', '.join(_party(p) for p in v.parties)}", "  "),
        *_wrapped(f"Uppgifter om: {', '.join(_category(c) for c in v.categories)}", "  "),
        *_wrapped(
            f"Ändamål: {', '.join(PURPOSES_SV.get(p, p) for p in v.purposes)}",
            "  ",
        ),
        f"  Gäller från {minute_text(v.valid_from)} till {minute_text(v.valid_until)}",
        f"  Du fick information om samtycket av {v.informed_by}, {minute_text(v.informed_at)}",
        f"  Registrerat i EVI hub {minute_text(v.recorded_at)} av {v.recorded_by}",
        *_evidence_lines(v.evidence),
    ]


def _withdrawal_line(w: HeldWithdrawal) -> list[str]:
    what = []
    if w.party is not None:
        what.append(f"för {_party(w.party)}")
    if w.category is not None:
        what.append(f"för uppgifter om {_category(w.category)}")
    scope = " och ".join(what) if what else "hela samtycket"
    versions = "version 1" if w.up_to_version == 1 else f"version 1–{w.up_to_version}"
    return _wrapped(
        f"Återkallat {minute_text(w.at)}: {scope} ({versions} av samtycke {w.consent_id}); "
        f"registrerat av {w.recorded_by}",
        "  ",
    )


def _block_line(b: HeldBlock) -> list[str]:
    what = f"uppgifter om {_category(b.category)}" if b.category else "alla uppgifter"
    who = _party(b.party) if b.party else "alla parter"
    until = f"till {minute_text(b.valid_until)}" if b.valid_until else "tills vidare"
    text = (
        f"{what}, {who}: från {minute_text(b.valid_from)} {until}; registrerad "
        f"{minute_text(b.recorded_at)} av {b.recorded_by}"
    )
    if b.lifted_at is not None:
        text += f"; hävd {minute_text(b.lifted_at)} av {b.lifted_by}"
    return _wrapped(text, "  ")


def _stored_consent_lines(held: HeldData) -> list[str]:
    """Every stored version, withdrawal and block, with who registered it and the evidence."""
    lines = ["SAMTYCKEN OCH SPÄRRAR: ALLT SOM ÄR SPARAT", ""]
    for consent_id in dict.fromkeys(v.consent_id for v in held.consent_versions):
        for v in held.consent_versions:
            if v.consent_id == consent_id:
                lines += [*_version_lines(v), ""]
        withdrawals = [w for w in held.withdrawals if w.consent_id == consent_id]
        if withdrawals:
            lines += [*[line for w in withdrawals for line in _withdrawal_line(w)], ""]
    if held.blocks:
        lines += ["Spärrar:", *[line for b in held.blocks for line in _block_line(b)], ""]
    return lines[:-1] if lines[-1] == "" else lines
