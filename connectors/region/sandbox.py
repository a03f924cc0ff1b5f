"""The region's rehabilitation API as a sandbox.

Its habits (see docs/connectors.md): a POST search naming the people asked about (no
subscriptions kept), offset/limit paging over ``uppdateradFranMs`` (epoch milliseconds,
inclusive), nested ``patient`` objects, coded sick-leave grades, and a TLS client
certificate (SITHS-style mTLS). It never sends a diagnosis, except as the deliberate schema
violation of the ``invalid_record_rate`` knob, which the connector must refuse.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import Body, FastAPI, Header, HTTPException, Response

from connectors.region.client import GRADE_PERCENT, PREFIX
from connectors.sandbox_kit import SandboxKit
from connectors.sandbox_kit.feed import EPOCH, STEP, changed_at, draw
from connectors.sandbox_kit.pushes import add_batch_route, receive_push
from hub.connector.sandbox import SandboxSettings
from hub.model.identity import InvalidIdentityError, parse_identity

API_VERSION = "3.1"
UNKNOWN_CODE = "OKAND"
MAX_LIMIT = 1000

EMITTED_CODES: dict[str, tuple[str, ...]] = {
    "referral_reason": ("SJSK-LANG", "ARBFORM-OKLAR", "OVR"),
}
"""Every code this sandbox emits, by the common code list it maps to."""
EMITTED_GRADES = tuple(GRADE_PERCENT)

_KINDS = (("REHABSTATUS", 80), ("REMISS", 20))


def _ms(seq: int) -> int:
    return int(changed_at(seq).timestamp() * 1000)


def _first_position_from_ms(ms: int) -> int:
    epoch_ms = int(EPOCH.timestamp() * 1000)
    step_ms = int(STEP.total_seconds() * 1000)
    if ms <= epoch_ms:
        return 0
    return -(-(ms - epoch_ms) // step_ms)


def post(kit: SandboxKit, seq: int, j: int) -> dict[str, Any]:
    """Record ``j``, written at sequence number ``seq``, as the region's API returns it (the
    same every time; the region keeps no list, so ``seq`` is ``j``)."""
    rng = draw(kit.settings.seed, "region", j)
    person = kit.person_at(j)
    day = changed_at(j).date()
    kind = rng.choices([k for k, _ in _KINDS], weights=[w for _, w in _KINDS])[0]
    item: dict[str, Any] = {
        "postId": f"RG-{kit.settings.seed}-{j}",
        "uppdateradMs": _ms(seq),
        "typ": kind,
        "patient": {"personnummer": person.dashed, "skyddadIdentitet": person.protected},
    }
    if kind == "REHABSTATUS":
        start = day - timedelta(days=rng.randint(0, 60))
        sick = rng.random() < 0.7
        item["sjukskrivning"] = (
            {
                "fromDatum": start.isoformat(),
                "tomDatum": (start + timedelta(days=rng.randint(7, 90))).isoformat(),
                "grad": rng.choice(EMITTED_GRADES),
            }
            if sick
            else None
        )
        item["pagaendeVardkontakt"] = rng.random() < 0.6
        item["rehabkoordinator"] = {"tilldelad": rng.random() < 0.5}
    else:
        item["remissdatum"] = (day - timedelta(days=rng.randint(0, 30))).isoformat()
        item["remissorsak"] = rng.choice(EMITTED_CODES["referral_reason"])
        if kit.has_unknown_code(j):
            item["remissorsak"] = UNKNOWN_CODE
    if kit.is_invalid(j):
        # A record that says too much: a clinical field the hub must never accept.
        item["diagnoskod"] = "TEST-ONLY"
    return item


def create_app(settings: SandboxSettings) -> FastAPI:
    """The region's sandbox for ``settings`` (mTLS is the server's job, see mtls.py)."""
    kit = SandboxKit("region", settings)
    app = kit.create_app("Regionen (sandbox)", "Rehabiliteringsstöd API, test only.")

    @app.get(PREFIX + "/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok", "version": API_VERSION}

    @app.post(PREFIX + "/sok")
    async def sok(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        numbers = body.get("personnummer")
        offset, limit = body.get("offset", 0), body.get("limit", 100)
        since = body.get("uppdateradFranMs")
        if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
            raise HTTPException(400, "personnummer ska vara en lista")
        if not isinstance(offset, int) or not isinstance(limit, int) or offset < 0:
            raise HTTPException(400, "offset och limit ska vara heltal")
        if not 1 <= limit <= MAX_LIMIT or (since is not None and not isinstance(since, int)):
            raise HTTPException(400, f"limit ska vara 1-{MAX_LIMIT}, uppdateradFranMs ett heltal")
        try:
            wanted = [parse_identity(n).number for n in numbers]
        except InvalidIdentityError:
            raise HTTPException(400, "ogiltigt personnummer i sökningen") from None
        people = None if kit.settings.all_subscribed else kit.people_for(wanted)
        feed = kit.feed(people)
        start = _first_position_from_ms(since) if since is not None else 0
        entries = feed.entries(start, offset, limit)
        return {"traffar": feed.count(start), "poster": [post(kit, s, j) for s, j in entries]}

    @app.post(PREFIX + "/meddelanden")
    async def meddelande(
        response: Response,
        body: dict[str, Any] = Body(...),
        idempotency_key: str | None = Header(default=None),
    ) -> dict[str, str]:
        receipt = receive_push(kit, idempotency_key, body, response)
        return {"meddelandeId": receipt.reference}

    add_batch_route(app, PREFIX + "/meddelanden/batch", kit)
    return app
