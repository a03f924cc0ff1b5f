"""The municipality's API (ekonomiskt bistånd v2) as typed calls and wire models.

Wire models describe the API exactly as it is, Swedish names and all; mapping to the
common model happens in :mod:`connectors.kommun.connector`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from hub.connector.batch import post_batch
from hub.connector.http import JsonApi
from hub.connector.native import parse_answer
from hub.model.records import PushResult

PREFIX = "/ekonomiskt-bistand/v2"
SUPPORTED_MAJOR = "2"
SANDBOX_TOKEN = "kommun-sandbox-token"  # noqa: S105 - the sandbox's public test credential
MAX_LOPNUMMER = 10**12
"""The largest sequence number taken for real: a thousand events a second for thirty years.
A larger one stored as the cursor would skip every event the municipality has."""


class _Wire(BaseModel):
    # The API may add fields (names, addresses) the hub does not use; ignore them.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Status(_Wire):
    tjanst: str
    version: str


class HandelsePage(_Wire):
    handelser: list[dict[str, object]]
    sida: int = Field(ge=1)
    antalSidor: int = Field(ge=1)
    totaltAntal: int = Field(ge=0)


class HandelseBase(_Wire):
    handelseId: str = Field(min_length=1)
    lopnummer: StrictInt = Field(ge=1, le=MAX_LOPNUMMER)  # the cursor: never a bool
    andrad: str  # local Swedish time "YYYY-MM-DD HH:MM:SS", parsed by the connector
    personnummer: str
    skyddadIdentitet: bool = False


class Remiss(HandelseBase):
    handelseTyp: Literal["REMISS"]
    remissdatum: date
    orsak: str


class Bistand(HandelseBase):
    handelseTyp: Literal["BISTAND"]
    bistandstyp: str
    beslutFran: date
    beslutTill: date | None = None


class Insats(HandelseBase):
    handelseTyp: Literal["INSATS"]
    insatskod: str
    status: str
    startdatum: date
    slutdatum: date | None = None
    omfattningProcent: StrictInt | None = Field(default=None, ge=0, le=100)


class Avslut(HandelseBase):
    handelseTyp: Literal["AVSLUT"]
    avslutsdatum: date
    avslutsorsak: str
    utfall: str


EVENT_TYPES: dict[str, type[HandelseBase]] = {
    "REMISS": Remiss,
    "BISTAND": Bistand,
    "INSATS": Insats,
    "AVSLUT": Avslut,
}


class KommunApi:
    """Calls to the municipality's API; every call is classified and retried by ``api``."""

    def __init__(self, api: JsonApi) -> None:
        self.api = api

    def status(self) -> Status:
        what = f"GET {PREFIX}/status"
        return parse_answer(
            self.api.connector, what, self.api.json("GET", PREFIX + "/status"), Status
        )

    def handelser(self, fran_lopnummer: int, sida: int, antal: int) -> HandelsePage:
        data = self.api.json(
            "GET",
            PREFIX + "/handelser",
            params={"franLopnummer": fran_lopnummer, "sida": sida, "antal": antal},
        )
        return parse_answer(self.api.connector, f"GET {PREFIX}/handelser", data, HandelsePage)

    def bevaka(self, personnummer: str) -> None:
        self.api.request("POST", PREFIX + "/bevakningar", json_body={"personnummer": personnummer})

    def avsluta_bevakning(self, personnummer: str) -> None:
        self.api.request(
            "POST", PREFIX + "/bevakningar/avsluta", json_body={"personnummer": personnummer}
        )

    def skicka_meddelande(self, key: str, body: dict[str, object]) -> tuple[str | None, bool]:
        """Send a message; returns (meddelandeId, whether the municipality had it already)."""
        response = self.api.request(
            "POST", PREFIX + "/meddelanden", json_body=body, headers={"Idempotency-Key": key}
        )
        try:
            reference: str | None = str(response.json()["meddelandeId"])
        except (ValueError, KeyError, TypeError):
            reference = None
        return reference, response.headers.get("Idempotent-Replayed", "").lower() == "true"

    def skicka_meddelanden(
        self, messages: Sequence[tuple[str, dict[str, object]]]
    ) -> list[PushResult]:
        """Send several messages in one request (each with its own key); one result each."""
        return post_batch(self.api, PREFIX + "/meddelanden/batch", messages)
