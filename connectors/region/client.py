"""The region's rehabilitation API (v3) as typed calls and wire models.

The API answers about the people named in each search; it keeps no list of followed
people. Its records hold what the region may share for coordinated rehabilitation: the
sick-leave certificate's period and degree, whether a treatment contact is ongoing, and
whether a rehabilitation coordinator is assigned. Never a diagnosis (see
:data:`FORBIDDEN_FIELDS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from hub.connector.batch import post_batch
from hub.connector.http import JsonApi
from hub.connector.native import parse_answer
from hub.model.records import PushResult

PREFIX = "/rehab/v3"
SUPPORTED_MAJOR = "3"

FORBIDDEN_FIELDS = frozenset({"diagnos", "diagnoser", "diagnoskod", "icd10", "kva", "anamnes"})
"""Field names that would carry clinical detail; a record holding one is refused whole."""

GRADE_PERCENT: dict[str, Literal[25, 50, 75, 100]] = {
    "HEL": 100,
    "TREKVART": 75,
    "HALV": 50,
    "KVART": 25,
}
"""Sjukskrivningsgrad as the percentage of full-time the person is on sick leave."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Ping(_Wire):
    status: str
    version: str


class SearchAnswer(_Wire):
    traffar: int = Field(ge=0)
    poster: list[dict[str, object]]


class Patient(_Wire):
    personnummer: str
    skyddadIdentitet: bool = False


class Sjukskrivning(_Wire):
    fromDatum: date
    tomDatum: date
    grad: str


class Rehabkoordinator(_Wire):
    tilldelad: bool


class _Post(_Wire):
    postId: str = Field(min_length=1)
    uppdateradMs: StrictInt = Field(ge=0)  # the cursor: never a bool
    patient: Patient


class Rehabstatus(_Post):
    typ: Literal["REHABSTATUS"]
    sjukskrivning: Sjukskrivning | None = None
    pagaendeVardkontakt: bool
    rehabkoordinator: Rehabkoordinator


class Remiss(_Post):
    typ: Literal["REMISS"]
    remissdatum: date
    remissorsak: str


POST_TYPES: dict[str, type[_Post]] = {"REHABSTATUS": Rehabstatus, "REMISS": Remiss}


def forbidden_fields(payload: Any, path: str = "") -> list[str]:
    """Paths of every forbidden (clinical) field anywhere in ``payload``."""
    if not _holds_forbidden(payload):
        return []  # the usual case, found without building any path
    found: list[str] = []
    if isinstance(payload, dict):
        for key, value in payload.items():
            where = f"{path}.{key}" if path else str(key)
            if str(key).lower() in FORBIDDEN_FIELDS:
                found.append(where)
            found.extend(forbidden_fields(value, where))
    elif isinstance(payload, list):
        for i, value in enumerate(payload):
            found.extend(forbidden_fields(value, f"{path}[{i}]"))
    return found


def _holds_forbidden(value: Any) -> bool:
    if isinstance(value, dict):
        for key, item in value.items():
            if str(key).lower() in FORBIDDEN_FIELDS:
                return True
            if isinstance(item, dict | list) and _holds_forbidden(item):
                return True
    elif isinstance(value, list):
        return any(isinstance(item, dict | list) and _holds_forbidden(item) for item in value)
    return False


class RegionApi:
    """Calls to the region's API; every call is classified and retried by ``api``."""

    def __init__(self, api: JsonApi) -> None:
        self.api = api

    def ping(self) -> Ping:
        data = self.api.json("GET", PREFIX + "/ping")
        return parse_answer(self.api.connector, f"GET {PREFIX}/ping", data, Ping)

    def sok(
        self, personnummer: list[str], uppdaterad_fran_ms: int | None, offset: int, limit: int
    ) -> SearchAnswer:
        body = {
            "personnummer": personnummer,
            "uppdateradFranMs": uppdaterad_fran_ms,
            "offset": offset,
            "limit": limit,
        }
        # A search names people, so it is a POST: numbers never go into a URL or access log.
        data = self.api.json("POST", PREFIX + "/sok", json_body=body)
        return parse_answer(self.api.connector, f"POST {PREFIX}/sok", data, SearchAnswer)

    def meddela(self, key: str, body: dict[str, object]) -> tuple[str | None, bool]:
        """Send a message; returns (meddelandeId, whether the region had it already)."""
        response = self.api.request(
            "POST", PREFIX + "/meddelanden", json_body=body, headers={"Idempotency-Key": key}
        )
        try:
            reference: str | None = str(response.json()["meddelandeId"])
        except (ValueError, KeyError, TypeError):
            reference = None
        return reference, response.headers.get("Idempotent-Replayed", "").lower() == "true"

    def meddela_flera(self, messages: Sequence[tuple[str, dict[str, object]]]) -> list[PushResult]:
        """Send several messages in one request (each with its own key); one result each."""
        return post_batch(self.api, PREFIX + "/meddelanden/batch", messages)
