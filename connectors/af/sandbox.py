"""Arbetsförmedlingen's participant API as a sandbox.

Its habits (see docs/connectors.md): English field names, nested ``participant`` and
``data`` objects, an opaque ``cursor`` with ``next_cursor`` / ``has_more``, ISO 8601 UTC
timestamps, 12-digit numbers without a dash, numeric deregistration codes, and OAuth 2.0
client credentials (``POST /oauth2/token``) for a short-lived bearer token.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from connectors.af.client import PREFIX, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from connectors.sandbox_kit import SandboxKit
from connectors.sandbox_kit.auth import bearer_token
from connectors.sandbox_kit.feed import changed_at, draw
from connectors.sandbox_kit.pushes import add_batch_route, receive_push
from hub.connector.sandbox import SandboxSettings
from hub.model.identity import InvalidIdentityError, parse_identity

API_VERSION = "1.4.0"
TOKEN_LIFETIME_S = 600
UNKNOWN_CODE = "99"
MAX_LIMIT = 1000

DEREGISTRATION_CODES = ("11", "12", "21", "31", "41", "51", "61", "71")
EMITTED_CODES: dict[str, tuple[str, ...]] = {
    "intervention_type": (
        "ARBPR",
        "AMU",
        "SIUS",
        "FOI-REH",
        "FOI-VAGL",
        "FOI-MOT",
        "KROM",
        "IPS",
        "ARBTR",
    ),
    "intervention_status": ("PLANNED", "ONGOING", "ENDED", "INTERRUPTED"),
    "benefit_type": ("AKS", "UVE", "NONE"),
    "referral_reason": ("LTU", "WCAP", "NEET", "OTH"),
    # One deregistration code says both why the person left and where they went.
    "closure_reason": DEREGISTRATION_CODES,
    "outcome": DEREGISTRATION_CODES,
}
"""Every code this sandbox emits, by the common code list it maps to."""

_KINDS = (("PROGRAMME", 40), ("BENEFIT", 30), ("REFERRAL", 15), ("DEREGISTRATION", 15))


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"p": position}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        position = json.loads(base64.urlsafe_b64decode(padded))["p"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise HTTPException(400, "invalid cursor") from None
    if not isinstance(position, int) or position < 0:
        raise HTTPException(400, "invalid cursor")
    return position


def event(kit: SandboxKit, seq: int, j: int) -> dict[str, Any]:
    """Record ``j``, written at sequence number ``seq``, as Arbetsförmedlingen's API returns
    it (the same every time)."""
    rng = draw(kit.settings.seed, "af", j)
    person = kit.person_at(j)
    occurred = changed_at(seq)
    day = changed_at(j).date()
    kind = rng.choices([k for k, _ in _KINDS], weights=[w for _, w in _KINDS])[0]
    start = day - timedelta(days=rng.randint(0, 90))
    end = start + timedelta(days=rng.randint(30, 365))

    def code(code_list: str) -> str:
        return rng.choice(EMITTED_CODES[code_list])

    data: dict[str, Any]
    if kind == "PROGRAMME":
        status = code("intervention_status")
        data = {
            "programme_code": code("intervention_type"),
            "status": status,
            "start_date": start.isoformat(),
            "end_date": end.isoformat() if status in ("ENDED", "INTERRUPTED") else None,
            "extent_percent": rng.choice((50, 75, 100)),
        }
        main = "programme_code"
    elif kind == "BENEFIT":
        data = {
            "benefit_code": code("benefit_type"),
            "period_start": start.isoformat(),
            "period_end": end.isoformat(),
            "days_per_week": rng.choice((3, 4, 5)),
        }
        main = "benefit_code"
    elif kind == "REFERRAL":
        data = {"referral_date": start.isoformat(), "reason_code": code("referral_reason")}
        main = "reason_code"
    else:
        data = {"deregistered_on": day.isoformat(), "deregistration_code": code("outcome")}
        main = "deregistration_code"
    if kit.has_unknown_code(j):
        data[main] = UNKNOWN_CODE
    item: dict[str, Any] = {
        "event_id": f"af-evt-{kit.settings.seed}-{j}",
        "event_type": kind,
        "occurred_at": occurred.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "participant": {
            "personal_identity_number": person.number,
            "protected_identity": person.protected,
            "given_name": person.given_name,
            "family_name": person.family_name,
        },
        "data": data,
    }
    if kit.is_invalid(j):
        if rng.random() < 0.5:
            del data[main]
        else:
            item["occurred_at"] = occurred.strftime("%d/%m/%Y %H:%M")
    return item


def create_app(settings: SandboxSettings) -> FastAPI:
    """Arbetsförmedlingen's sandbox for ``settings``."""
    kit = SandboxKit("af", settings)
    app = kit.create_app("Arbetsförmedlingen (sandbox)", "Participant events API, test only.")
    issued: dict[str, float] = {}  # access token -> expiry (monotonic); lost on restart
    basic = HTTPBasic(auto_error=False)

    @app.post("/oauth2/token")
    async def token(
        request: Request, credentials: HTTPBasicCredentials | None = Depends(basic)
    ) -> dict[str, Any]:
        # A form body (RFC 6749 §4.4.2), read by hand to need no multipart library.
        form = parse_qs((await request.body()).decode("ascii", "replace"))
        if form.get("grant_type") != ["client_credentials"]:
            raise HTTPException(400, "unsupported_grant_type")
        if (
            credentials is None
            or credentials.username != SANDBOX_CLIENT_ID
            or not secrets.compare_digest(credentials.password, SANDBOX_CLIENT_SECRET)
        ):
            raise HTTPException(401, "invalid_client", headers={"WWW-Authenticate": "Basic"})
        access = secrets.token_urlsafe(24)
        issued[access] = time.monotonic() + TOKEN_LIFETIME_S
        return {"access_token": access, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_S}

    auth = Depends(bearer_token(lambda t: issued.get(t, 0.0) > time.monotonic()))

    @app.get(PREFIX + "/health", dependencies=[auth])
    async def health() -> dict[str, str]:
        return {"status": "UP", "api_version": API_VERSION}

    @app.get(PREFIX + "/events", dependencies=[auth])
    async def events(
        cursor: str | None = Query(default=None),
        limit: int = Query(default=100, ge=1, le=MAX_LIMIT),
    ) -> dict[str, Any]:
        start = decode_cursor(cursor) if cursor else 0
        feed = kit.feed()
        entries = feed.entries(start, 0, limit)
        following = entries[-1][0] + 1 if entries else max(start, 0)
        return {
            "events": [event(kit, seq, j) for seq, j in entries],
            "next_cursor": encode_cursor(following),
            "has_more": feed.count(following) > 0,
        }

    def number(body: dict[str, Any]) -> str:
        try:
            return parse_identity(str(body.get("personal_identity_number", ""))).number
        except InvalidIdentityError:
            raise HTTPException(400, "personal_identity_number missing or invalid") from None

    @app.post(PREFIX + "/subscriptions", dependencies=[auth])
    async def subscribe(response: Response, body: dict[str, Any] = Body(...)) -> dict[str, str]:
        new = kit.subscribe(number(body))
        response.status_code = 201 if new else 200
        return {"status": "ACTIVE"}

    @app.post(PREFIX + "/subscriptions:cancel", dependencies=[auth])
    async def cancel(body: dict[str, Any] = Body(...)) -> dict[str, str]:
        had = kit.unsubscribe(number(body))
        return {"status": "CANCELLED" if had else "NOT_FOUND"}

    @app.post(PREFIX + "/messages", dependencies=[auth])
    async def message(
        response: Response,
        body: dict[str, Any] = Body(...),
        idempotency_key: str | None = Header(default=None),
    ) -> dict[str, str]:
        receipt = receive_push(kit, idempotency_key, body, response)
        return {"message_id": receipt.reference}

    add_batch_route(app, PREFIX + "/messages/batch", kit, auth)
    return app
