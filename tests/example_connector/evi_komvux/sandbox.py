"""A sandbox for the komvux API, built on EVI hub's sandbox kit (same people, same seed)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import Depends, FastAPI, Query

from connectors.sandbox_kit import SandboxKit
from connectors.sandbox_kit.auth import bearer_token
from connectors.sandbox_kit.feed import changed_at, draw
from evi_komvux.connector import SANDBOX_TOKEN
from hub.connector.sandbox import SandboxSettings

COURSES = ("GRUSV", "GYMN", "SYV")
STATUSES = ("ANTAGEN", "PAGAR", "KLAR", "AVBROTT")
PAGE = 50


def create_app(settings: SandboxSettings) -> FastAPI:
    kit = SandboxKit("komvux", settings)
    app = kit.create_app("Komvux (sandbox)", "Example third-party sandbox.")
    auth = Depends(bearer_token(lambda token: token == SANDBOX_TOKEN))

    @app.get("/api/status", dependencies=[auth])
    async def status() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/kursdeltaganden", dependencies=[auth])
    async def rows(efter: int = Query(default=0, ge=0)) -> dict[str, Any]:
        # Everyone the population holds (no subscriptions at this school), ids from 1.
        feed = kit.feed(range(len(kit.population)))
        items = []
        for j in feed.positions(efter, 0, PAGE):
            rng = draw(settings.seed, "komvux", j)
            start = changed_at(j).date() - timedelta(days=rng.randint(0, 100))
            items.append(
                {
                    "id": j + 1,
                    "personnummer": kit.person_at(j).number,
                    "kurskod": rng.choice(COURSES),
                    "status": rng.choice(STATUSES),
                    "start": start.isoformat(),
                    "slut": None,
                }
            )
        return {"kursdeltaganden": items}

    return app
