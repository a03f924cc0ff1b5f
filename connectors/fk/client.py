"""Försäkringskassan's samverkan API (v1) as typed calls and wire models."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from hub.connector.batch import post_batch
from hub.connector.http import JsonApi
from hub.connector.native import parse_answer
from hub.model.records import PushResult

PREFIX = "/samverkan/api/v1"
SUPPORTED_MAJOR = "1"


def _compact_date(value: object) -> object:
    # FK writes dates as YYYYMMDD; anything else is a schema violation.
    if isinstance(value, str):
        if len(value) != 8 or not (value.isascii() and value.isdigit()):
            raise ValueError("a date is written YYYYMMDD")
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))  # ValueError if impossible
    return value


CompactDate = Annotated[date, BeforeValidator(_compact_date)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Ping(_Wire):
    tjanst: str
    apiVersion: str


class ArendePage(_Wire):
    arenden: list[dict[str, object]]


class _Arende(_Wire):
    arendeId: str = Field(min_length=1)
    andradTidpunkt: AwareDatetime
    personnummer: str
    sekretessmarkerad: bool = False


class Forman(_Arende):
    arendetyp: Literal["FORMAN"]
    formanskod: str
    periodFrom: CompactDate
    periodTom: CompactDate | None = None
    omfattning: Literal["1/1", "3/4", "1/2", "1/4"]


class Rehab(_Arende):
    arendetyp: Literal["REHAB"]
    atgardskod: str
    atgardsstatus: str
    periodFrom: CompactDate
    periodTom: CompactDate | None = None


class Remiss(_Arende):
    arendetyp: Literal["REMISS"]
    remissdatum: CompactDate
    anledning: str


CASE_TYPES: dict[str, type[_Arende]] = {"FORMAN": Forman, "REHAB": Rehab, "REMISS": Remiss}
EXTENT: dict[str, int] = {"1/1": 100, "3/4": 75, "1/2": 50, "1/4": 25}
"""Omfattning (share of full benefit) as a percentage."""


class FkApi:
    """Calls to Försäkringskassan's API; every call is classified and retried by ``api``."""

    def __init__(self, api: JsonApi) -> None:
        self.api = api

    def ping(self) -> Ping:
        data = self.api.json("GET", PREFIX + "/ping")
        return parse_answer(self.api.connector, f"GET {PREFIX}/ping", data, Ping)

    def arenden(self, andrad_fran: str | None, maximum: int) -> ArendePage:
        params: dict[str, str | int] = {"max": maximum}
        if andrad_fran:
            params["andradFran"] = andrad_fran
        data = self.api.json("GET", PREFIX + "/arenden", params=params)
        return parse_answer(self.api.connector, f"GET {PREFIX}/arenden", data, ArendePage)

    def bevaka(self, personnummer: str) -> None:
        self.api.request("POST", PREFIX + "/bevakning", json_body={"personnummer": personnummer})

    def upphor(self, personnummer: str) -> None:
        self.api.request(
            "POST", PREFIX + "/bevakning/upphor", json_body={"personnummer": personnummer}
        )

    def underratta(self, key: str, body: dict[str, object]) -> tuple[str | None, bool]:
        """Send a notice; returns (underrattelseId, whether FK had it already)."""
        response = self.api.request(
            "POST", PREFIX + "/underrattelser", json_body=body, headers={"Idempotency-Key": key}
        )
        try:
            reference: str | None = str(response.json()["underrattelseId"])
        except (ValueError, KeyError, TypeError):
            reference = None
        return reference, response.headers.get("Idempotent-Replayed", "").lower() == "true"

    def underratta_flera(
        self, messages: Sequence[tuple[str, dict[str, object]]]
    ) -> list[PushResult]:
        """Send several messages in one request (each with its own key); one result each."""
        return post_batch(self.api, PREFIX + "/underrattelser/batch", messages)
