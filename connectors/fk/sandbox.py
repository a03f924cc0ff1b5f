"""Försäkringskassan's samverkan API as a sandbox.

Its habits (see docs/connectors.md): Swedish camelCase names, a since-timestamp feed
(``andradFran``, inclusive, ``max`` per call, no page envelope), timestamps with a UTC
offset and milliseconds, ``YYYYMMDD`` dates, 12-digit numbers, ``omfattning`` as a fraction,
and a TLS client certificate (mTLS) instead of a token.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Body, FastAPI, Header, HTTPException, Query, Response

from connectors.fk.client import PREFIX
from connectors.sandbox_kit import SandboxKit
from connectors.sandbox_kit.feed import changed_at, draw, first_position_at_or_after
from connectors.sandbox_kit.pushes import add_batch_route, receive_push
from hub.connector.sandbox import SandboxSettings
from hub.model.identity import InvalidIdentityError, parse_identity

API_VERSION = "1.2"
STOCKHOLM = ZoneInfo("Europe/Stockholm")
UNKNOWN_CODE = "OKAND"
MAX_PER_CALL = 1000

EMITTED_CODES: dict[str, tuple[str, ...]] = {
    "benefit_type": ("SJP", "SJPR", "AKE", "SJE", "AKS"),
    "intervention_type": ("ALR", "ARBTR", "UTB", "ARBPR"),
    "intervention_status": ("PLANERAD", "PAGAENDE", "AVSLUTAD", "AVBRUTEN"),
    "referral_reason": ("LANGSJUK", "OKLAR-AF", "UNG-AKE", "OVR"),
}
"""Every code this sandbox emits, by the common code list it maps to."""

_KINDS = (("FORMAN", 50), ("REHAB", 30), ("REMISS", 20))


def _compact(day: Any) -> str:
    return str(day.strftime("%Y%m%d"))


def arende(kit: SandboxKit, seq: int, j: int) -> dict[str, Any]:
    """Record ``j``, written at sequence number ``seq``, as Försäkringskassan's API returns
    it (the same every time)."""
    rng = draw(kit.settings.seed, "fk", j)
    person = kit.person_at(j)
    changed = changed_at(seq).astimezone(STOCKHOLM)
    day = changed_at(j).astimezone(STOCKHOLM).date()
    kind = rng.choices([k for k, _ in _KINDS], weights=[w for _, w in _KINDS])[0]
    start = day - timedelta(days=rng.randint(0, 120))
    end = start + timedelta(days=rng.randint(14, 365))

    def code(code_list: str) -> str:
        return rng.choice(EMITTED_CODES[code_list])

    item: dict[str, Any] = {
        "arendeId": f"FK-{kit.settings.seed}-{j:010d}",
        "andradTidpunkt": changed.isoformat(timespec="milliseconds"),
        "personnummer": person.number,
        "sekretessmarkerad": person.protected,
        "arendetyp": kind,
    }
    if kind == "FORMAN":
        item.update(
            formanskod=code("benefit_type"),
            periodFrom=_compact(start),
            periodTom=_compact(end),
            omfattning=rng.choice(("1/1", "3/4", "1/2", "1/4")),
        )
        main = "formanskod"
    elif kind == "REHAB":
        status = code("intervention_status")
        item.update(
            atgardskod=code("intervention_type"),
            atgardsstatus=status,
            periodFrom=_compact(start),
            periodTom=_compact(end) if status in ("AVSLUTAD", "AVBRUTEN") else None,
        )
        main = "atgardskod"
    else:
        item.update(remissdatum=_compact(start), anledning=code("referral_reason"))
        main = "anledning"
    if kit.has_unknown_code(j):
        item[main] = UNKNOWN_CODE
    if kit.is_invalid(j):
        # Violations seen in practice: ISO dates where YYYYMMDD is promised, a bad fraction.
        if kind == "FORMAN" and rng.random() < 0.5:
            item["omfattning"] = "5/4"
        else:
            item["periodFrom" if kind != "REMISS" else "remissdatum"] = start.isoformat()
    return item


def create_app(settings: SandboxSettings) -> FastAPI:
    """Försäkringskassan's sandbox for ``settings`` (mTLS is the server's job, see mtls.py)."""
    kit = SandboxKit("fk", settings)
    app = kit.create_app("Försäkringskassan (sandbox)", "Samverkan API, test only.")

    @app.get(PREFIX + "/ping")
    async def ping() -> dict[str, str]:
        return {"tjanst": "samverkan", "apiVersion": API_VERSION}

    @app.get(PREFIX + "/arenden")
    async def arenden(
        andradFran: str | None = Query(default=None),
        max: int = Query(default=100, ge=1, le=MAX_PER_CALL),
    ) -> dict[str, Any]:
        start = 0
        if andradFran:
            try:
                since = datetime.fromisoformat(andradFran)
            except ValueError:
                raise HTTPException(400, "andradFran är inte en tidpunkt") from None
            if since.tzinfo is None:
                raise HTTPException(400, "andradFran saknar tidszon")
            start = first_position_at_or_after(since)
        entries = kit.feed().entries(start, 0, max)
        return {"arenden": [arende(kit, seq, j) for seq, j in entries]}

    def number(body: dict[str, Any]) -> str:
        try:
            return parse_identity(str(body.get("personnummer", ""))).number
        except InvalidIdentityError:
            raise HTTPException(400, "personnummer saknas eller är ogiltigt") from None

    @app.post(PREFIX + "/bevakning")
    async def bevaka(response: Response, body: dict[str, Any] = Body(...)) -> dict[str, str]:
        new = kit.subscribe(number(body))
        response.status_code = 201 if new else 200
        return {"status": "AKTIV"}

    @app.post(PREFIX + "/bevakning/upphor")
    async def upphor(body: dict[str, Any] = Body(...)) -> dict[str, str]:
        had = kit.unsubscribe(number(body))
        return {"status": "UPPHORD" if had else "SAKNAS"}

    @app.post(PREFIX + "/underrattelser")
    async def underrattelse(
        response: Response,
        body: dict[str, Any] = Body(...),
        idempotency_key: str | None = Header(default=None),
    ) -> dict[str, str]:
        receipt = receive_push(kit, idempotency_key, body, response)
        return {"underrattelseId": receipt.reference}

    add_batch_route(app, PREFIX + "/underrattelser/batch", kit)
    return app
