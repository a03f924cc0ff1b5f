"""The municipality's API as a sandbox: ekonomiskt bistånd and the labour-market unit.

Its habits (see docs/connectors.md): Swedish field names, numbered pages over a sequence
number (``franLopnummer``, ``sida``, ``antal``), local Swedish time without a zone
(``2024-03-05 14:22:10``), ``YYYY-MM-DD`` dates, ``YYYYMMDD-NNNN`` numbers, a static
bearer token, a list of followed people (``bevakningar``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Query, Response

from connectors.kommun.client import SANDBOX_TOKEN
from connectors.sandbox_kit import SandboxKit
from connectors.sandbox_kit.auth import bearer_token
from connectors.sandbox_kit.feed import changed_at, draw
from connectors.sandbox_kit.pushes import add_batch_route, receive_push
from hub.connector.sandbox import SandboxSettings
from hub.model.identity import InvalidIdentityError, parse_identity

PREFIX = "/ekonomiskt-bistand/v2"
API_VERSION = "2.3"
STOCKHOLM = ZoneInfo("Europe/Stockholm")
UNKNOWN_CODE = "X-OKAND"
MAX_PAGE = 500

EMITTED_CODES: dict[str, tuple[str, ...]] = {
    "referral_reason": ("EKB", "LAU", "UVAS", "OVR"),
    "benefit_type": ("FS", "LO", "AVSLAG"),
    "intervention_type": ("AT", "PRA", "IPS", "SYV", "MOT", "HALSA"),
    "intervention_status": ("PLAN", "PAGAR", "KLAR", "AVBR"),
    "closure_reason": ("MAL", "ANNAT-STOD", "SJUK", "FLYTT", "EGEN", "EJKONTAKT"),
    "outcome": ("ANST", "ANST-STOD", "STUD", "EGENFORS", "RATTERS", "DAGLIG", "OVR"),
}
"""Every code this sandbox emits, by the common code list it maps to."""

_KINDS = (("REMISS", 15), ("BISTAND", 35), ("INSATS", 35), ("AVSLUT", 15))


def handelse(kit: SandboxKit, seq: int, j: int) -> dict[str, Any]:
    """Record ``j``, written at sequence number ``seq``, as the municipality's API returns
    it (the same every time)."""
    rng = draw(kit.settings.seed, "kommun", j)
    person = kit.person_at(j)
    changed = changed_at(seq)
    day = changed_at(j).astimezone(STOCKHOLM).date()
    kind = rng.choices([k for k, _ in _KINDS], weights=[w for _, w in _KINDS])[0]
    start = day - timedelta(days=rng.randint(0, 60))
    end = start + timedelta(days=rng.randint(14, 180))

    def code(code_list: str) -> str:
        return rng.choice(EMITTED_CODES[code_list])

    item: dict[str, Any] = {
        "handelseId": f"KB-{kit.settings.seed}-{j:09d}",
        "lopnummer": seq + 1,
        "handelseTyp": kind,
        "andrad": changed.astimezone(STOCKHOLM).strftime("%Y-%m-%d %H:%M:%S"),
        "personnummer": person.dashed,
        "skyddadIdentitet": person.protected,
    }
    main = ""
    if kind == "REMISS":
        item.update(remissdatum=start.isoformat(), orsak=code("referral_reason"))
        item["namn"] = {"fornamn": person.given_name, "efternamn": person.family_name}
        if not person.protected:  # a protected address is never handed out
            item["adress"] = {
                "gata": person.street,
                "postnummer": person.postcode,
                "ort": person.city,
            }
        main = "orsak"
    elif kind == "BISTAND":
        item.update(
            bistandstyp=code("benefit_type"),
            beslutFran=start.isoformat(),
            beslutTill=end.isoformat(),
        )
        main = "bistandstyp"
    elif kind == "INSATS":
        status = code("intervention_status")
        item.update(
            insatskod=code("intervention_type"),
            status=status,
            startdatum=start.isoformat(),
            slutdatum=end.isoformat() if status in ("KLAR", "AVBR") else None,
            omfattningProcent=rng.choice((25, 50, 75, 100)),
        )
        main = "insatskod"
    else:
        item.update(
            avslutsdatum=day.isoformat(),
            avslutsorsak=code("closure_reason"),
            utfall=code("outcome"),
        )
        main = "avslutsorsak"
    if kit.has_unknown_code(j):
        item[main] = UNKNOWN_CODE
    if kit.is_invalid(j):
        # Schema violations seen in real exports: a missing code, an impossible date.
        if rng.random() < 0.5:
            del item[main]
        else:
            item["andrad"] = "2024-02-30 25:61:00"
    return item


def create_app(settings: SandboxSettings) -> FastAPI:
    """The municipality sandbox for ``settings``."""
    kit = SandboxKit("kommun", settings)
    app = kit.create_app(
        "Kommunen (sandbox)", "Ekonomiskt bistånd och arbetsmarknadsenheten, test API."
    )
    auth = Depends(bearer_token(lambda token: token == SANDBOX_TOKEN))

    @app.get(PREFIX + "/status", dependencies=[auth])
    async def status() -> dict[str, str]:
        return {"tjanst": "ekonomiskt-bistand", "version": API_VERSION}

    @app.get(PREFIX + "/handelser", dependencies=[auth])
    async def handelser(
        franLopnummer: int = Query(default=1, ge=1),
        sida: int = Query(default=1, ge=1),
        antal: int = Query(default=100, ge=1, le=MAX_PAGE),
    ) -> dict[str, Any]:
        feed = kit.feed()
        start = franLopnummer - 1
        total = feed.count(start)
        entries = feed.entries(start, (sida - 1) * antal, antal)
        return {
            "handelser": [handelse(kit, seq, j) for seq, j in entries],
            "sida": sida,
            "antalSidor": max(1, -(-total // antal)),
            "totaltAntal": total,
        }

    def number(body: dict[str, Any]) -> str:
        try:
            return parse_identity(str(body.get("personnummer", ""))).number
        except InvalidIdentityError:
            raise HTTPException(400, "personnummer saknas eller är ogiltigt") from None

    @app.post(PREFIX + "/bevakningar", dependencies=[auth])
    async def bevaka(response: Response, body: dict[str, Any] = Body(...)) -> dict[str, str]:
        new = kit.subscribe(number(body))
        response.status_code = 201 if new else 200
        return {"status": "registrerad" if new else "fanns_redan"}

    @app.post(PREFIX + "/bevakningar/avsluta", dependencies=[auth])
    async def avsluta(body: dict[str, Any] = Body(...)) -> dict[str, str]:
        had = kit.unsubscribe(number(body))
        return {"status": "avslutad" if had else "fanns_inte"}

    @app.post(PREFIX + "/meddelanden", dependencies=[auth])
    async def meddelande(
        response: Response,
        body: dict[str, Any] = Body(...),
        idempotency_key: str | None = Header(default=None),
    ) -> dict[str, str]:
        receipt = receive_push(kit, idempotency_key, body, response)
        return {"meddelandeId": receipt.reference}

    add_batch_route(app, PREFIX + "/meddelanden/batch", kit, auth)
    return app
