"""A receipt for the person, in plain Swedish: what they agreed to and how to withdraw it.

Written for the person, not for officials: whole sentences, the authorities' names
rather than connector names, local (Swedish) time, no codes. The number is shown
masked (birth date only), as on the paper copy a caseworker hands over.
"""

from __future__ import annotations

from datetime import datetime

from hub.clock import swedish_local
from hub.consent.views import ConsentHistory, PersonConsents

PARTY_NAMES = {
    "kommun": "Kommunen (socialtjänstens försörjningsstöd och arbetsmarknadsenheten)",
    "af": "Arbetsförmedlingen",
    "fk": "Försäkringskassan",
    "region": "Regionen (hälso- och sjukvården)",
    "team": "Samordningsteamet i En väg in",
}
CATEGORY_NAMES = {
    "identity": "vem du är: namn, adress och kontaktuppgifter",
    "referral": "remissen, alltså begäran om att du ska få stöd av samordningsteamet",
    "assessment": "kartläggningen av din situation",
    "plan": "din planering (genomförandeplan/SIP) och vem som ansvarar för vad",
    "intervention": "vilka insatser du får och hur de går",
    "benefit": "vilken ersättning eller försörjning du har",
    "health": "din hälsa",
    "outcome": "resultatet när insatsen avslutas",
}
PURPOSE_NAMES = {
    "coordination": "att samordna ditt stöd mellan parterna (samverkan kring dig)",
    "evaluation": "uppföljning och statistik om hur samverkan fungerar",
}
STATUS_NAMES = {
    "active": "Samtycket gäller nu.",
    "pending": "Samtycket börjar gälla vid startdatumet nedan.",
    "expired": "Samtycket har upphört att gälla eftersom giltighetstiden har gått ut.",
    "withdrawn": "Du har återkallat samtycket. Inga fler uppgifter lämnas ut med stöd av det.",
}
MONTHS = (
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
)


def swedish_time(value: datetime) -> str:
    """``den 1 januari 2025 kl. 09.30`` in Swedish local time; in the hour the clocks show
    twice when summer time ends, ``kl. 02.30 (sommartid)`` or ``(vintertid)`` after it."""
    local, note = swedish_local(value)
    return f"den {local.day} {MONTHS[local.month - 1]} {local.year} kl. {local:%H.%M}" + (
        f" ({note})" if note else ""
    )


def render_receipt(person: PersonConsents) -> str:
    """The receipt for every consent the person has given, as plain text."""
    masked = person.identity.number[:8] + "-****"
    lines = [
        "KVITTO PÅ DITT SAMTYCKE",
        "",
        f"Kvittot gäller personen med personnummer {masked}.",
        f"Utskrivet {swedish_time(person.as_of)}.",
    ]
    for consent in person.consents:
        lines += ["", *_consent_lines(consent)]
    lines += ["", *_block_lines(person), "", *_how_to_withdraw()]
    return "\n".join(lines) + "\n"


def _consent_lines(consent: ConsentHistory) -> list[str]:
    v = consent.current
    ended = consent.status in ("expired", "withdrawn")  # told in the past tense
    period = (
        f"Samtycket gällde från {swedish_time(v.valid_from)} till "
        + (
            f"{swedish_time(consent.withdrawn_at)}, då du återkallade det."
            if consent.withdrawn_at is not None
            else f"{swedish_time(v.valid_until)}, då det upphörde av sig självt."
        )
        if ended
        else f"Samtycket gäller från {swedish_time(v.valid_from)} "
        f"till {swedish_time(v.valid_until)}. Därefter upphör det av sig självt."
    )
    lines = [
        f"Samtycke {consent.consent_id} (version {v.version})",
        STATUS_NAMES[consent.status],
        "",
        "Du sa ja till att dessa parter fick lämna uppgifter om dig till varandra:"
        if ended
        else "Du har sagt ja till att dessa parter får lämna uppgifter om dig till varandra:",
        *[f"  - {PARTY_NAMES.get(p, p)}" for p in v.parties],
        "",
        "De får dela uppgifter om:",
        *[f"  - {CATEGORY_NAMES.get(c, c)}" for c in v.categories],
        "",
        "Uppgifterna får bara användas för:",
        *[f"  - {PURPOSE_NAMES.get(p, p)}" for p in v.purposes],
        "",
        period,
        f"Du fick information om samtycket {swedish_time(v.informed_at)}.",
    ]
    if consent.withdrawn_at is not None and not ended:
        lines.append(f"Du återkallade samtycket {swedish_time(consent.withdrawn_at)}.")
    for w in consent.partial_withdrawals:
        what = []
        if w.party is not None:
            what.append(f"för {PARTY_NAMES.get(w.party, w.party)}")
        if w.category is not None:
            what.append(f"för uppgifter om {CATEGORY_NAMES.get(w.category, w.category)}")
        line = f"Du återkallade samtycket {' och '.join(what)} {swedish_time(w.at)}."
        if w.up_to_version < v.version:  # an amendment since: the gate reads it no more
            line += (
                f" Det gällde version {w.up_to_version}; version {v.version}, som gäller nu, "
                "registrerades efter det."
            )
        lines.append(line)
    return lines


def _block_lines(person: PersonConsents) -> list[str]:
    if not person.blocks:
        return ["Du har inga spärrar."]
    lines = ["Dina spärrar (en spärr går alltid före ett samtycke):"]
    for b in person.blocks:
        who = PARTY_NAMES.get(b.party, b.party) if b.party else "alla parter"
        what = (
            f"uppgifter om {CATEGORY_NAMES.get(b.category, b.category)}"
            if b.category
            else ("alla uppgifter")
        )
        until = f" till {swedish_time(b.valid_until)}" if b.valid_until else " tills vidare"
        if b.lifted_at is not None:
            until += f" (hävd {swedish_time(b.lifted_at)}; gäller inte längre)"
        elif b.valid_until is not None and b.valid_until <= person.as_of:
            until += " (har upphört)"
        lines.append(f"  - {what}, {who}: från {swedish_time(b.valid_from)}{until}")
    return lines


def _how_to_withdraw() -> list[str]:
    return [
        "Så återkallar du samtycket",
        "Du kan när som helst återkalla hela samtycket eller en del av det, till exempel för",
        "en viss part eller en viss sorts uppgifter. Det är lika enkelt som att ge det: säg",
        "till din handläggare eller någon i samordningsteamet, muntligt eller skriftligt.",
        "Du behöver inte säga varför. Återkallelsen gäller från den stund den registreras.",
        "Uppgifter som redan har lämnats ut innan dess påverkas inte. Du kan också spärra",
        "en part eller en sorts uppgifter; en spärr går före samtycket.",
    ]
