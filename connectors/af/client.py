"""Arbetsförmedlingen's participant API (v1) as typed calls and wire models."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt

from hub.connector.batch import post_batch
from hub.connector.http import JsonApi
from hub.connector.native import parse_answer
from hub.model.records import PushResult

PREFIX = "/participants/v1"
TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a URL path, not a secret
SUPPORTED_MAJOR = "1"
SANDBOX_CLIENT_ID = "evi-hub"
SANDBOX_CLIENT_SECRET = "af-sandbox-secret"  # noqa: S105 - the sandbox's public test credential


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Health(_Wire):
    status: str
    api_version: str


class EventPage(_Wire):
    events: list[dict[str, object]]
    next_cursor: str | None = None
    has_more: bool


class Participant(_Wire):
    personal_identity_number: str
    protected_identity: bool = False


class Programme(_Wire):
    programme_code: str
    status: str
    start_date: date
    end_date: date | None = None
    extent_percent: StrictInt | None = Field(default=None, ge=0, le=100)


class BenefitPeriod(_Wire):
    benefit_code: str
    period_start: date
    period_end: date | None = None
    days_per_week: StrictInt | None = Field(default=None, ge=0, le=5)


class ReferralData(_Wire):
    referral_date: date
    reason_code: str


class Deregistration(_Wire):
    deregistered_on: date
    deregistration_code: str


class _Event(_Wire):
    event_id: str = Field(min_length=1)
    occurred_at: AwareDatetime
    participant: Participant


class ProgrammeEvent(_Event):
    event_type: Literal["PROGRAMME"]
    data: Programme


class BenefitEvent(_Event):
    event_type: Literal["BENEFIT"]
    data: BenefitPeriod


class ReferralEvent(_Event):
    event_type: Literal["REFERRAL"]
    data: ReferralData


class DeregistrationEvent(_Event):
    event_type: Literal["DEREGISTRATION"]
    data: Deregistration


EVENT_TYPES: dict[str, type[_Event]] = {
    "PROGRAMME": ProgrammeEvent,
    "BENEFIT": BenefitEvent,
    "REFERRAL": ReferralEvent,
    "DEREGISTRATION": DeregistrationEvent,
}


class AfApi:
    """Calls to Arbetsförmedlingen's API; every call is classified and retried by ``api``."""

    def __init__(self, api: JsonApi) -> None:
        self.api = api

    def health(self) -> Health:
        data = self.api.json("GET", PREFIX + "/health")
        return parse_answer(self.api.connector, f"GET {PREFIX}/health", data, Health)

    def events(self, cursor: str | None, limit: int) -> EventPage:
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        data = self.api.json("GET", PREFIX + "/events", params=params)
        return parse_answer(self.api.connector, f"GET {PREFIX}/events", data, EventPage)

    def subscribe(self, number: str) -> None:
        body = {"personal_identity_number": number}
        self.api.request("POST", PREFIX + "/subscriptions", json_body=body)

    def cancel(self, number: str) -> None:
        body = {"personal_identity_number": number}
        self.api.request("POST", PREFIX + "/subscriptions:cancel", json_body=body)

    def send_message(self, key: str, body: dict[str, object]) -> tuple[str | None, bool]:
        """Send a message; returns (message_id, whether the authority had it already)."""
        response = self.api.request(
            "POST", PREFIX + "/messages", json_body=body, headers={"Idempotency-Key": key}
        )
        try:
            reference: str | None = str(response.json()["message_id"])
        except (ValueError, KeyError, TypeError):
            reference = None
        return reference, response.headers.get("Idempotent-Replayed", "").lower() == "true"

    def send_messages(self, messages: Sequence[tuple[str, dict[str, object]]]) -> list[PushResult]:
        """Send several messages in one request (each with its own key); one result each."""
        return post_batch(self.api, PREFIX + "/messages/batch", messages)
