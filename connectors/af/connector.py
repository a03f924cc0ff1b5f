"""The Arbetsförmedlingen connector: OAuth 2.0 client credentials, an opaque event cursor."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
from pydantic import Field, SecretStr

from connectors.af.client import (
    EVENT_TYPES,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SUPPORTED_MAJOR,
    TOKEN_PATH,
    AfApi,
    BenefitEvent,
    DeregistrationEvent,
    ProgrammeEvent,
    ReferralEvent,
)
from hub.connector import (
    AuthorityError,
    Connector,
    HttpOptions,
    SandboxSettings,
    build_client,
)
from hub.connector.asgi import ASGIApp
from hub.connector.auth import ClientCredentials
from hub.connector.batch import BATCH_LIMIT
from hub.connector.native import parse_person, parse_typed, record_problems
from hub.model.codes import (
    BenefitType,
    ClosureReason,
    InterventionStatus,
    InterventionType,
    OutcomeType,
    ReferralReason,
)
from hub.model.domain import Benefit, Closure, Intervention, Referral
from hub.model.identity import PersonalIdentity
from hub.model.records import CommonRecord, NativeRecord, PushResult, Transfer
from hub.model.vocab import Category


class AfConnector(Connector):
    """Arbetsförmedlingen: programmes, activity support, referrals and deregistrations."""

    name = "af"
    authority = "Arbetsförmedlingen"
    version = "1.0.0"
    delivers = frozenset(
        {Category.REFERRAL, Category.BENEFIT, Category.INTERVENTION, Category.OUTCOME}
    )
    receives = frozenset({Category.REFERRAL, Category.ASSESSMENT, Category.PLAN, Category.OUTCOME})
    push_batch_size = BATCH_LIMIT

    class Options(HttpOptions):
        client_id: str = Field(min_length=1, description="OAuth 2.0 client id.")
        client_secret: SecretStr = Field(description="OAuth 2.0 client secret.")
        token_url: str = Field(
            default=TOKEN_PATH, description="Token endpoint (absolute, or relative to base_url)."
        )
        page_size: int = Field(default=500, ge=1, le=1000, description="Events per page.")

    options: Options

    def __init__(self, options: Any, client: httpx.Client, **kwargs: Any) -> None:
        super().__init__(options, client, **kwargs)
        self.remote = AfApi(self.api)

    @classmethod
    def build_client(
        cls, options: Any, *, transport: httpx.BaseTransport | None = None
    ) -> httpx.Client:
        auth = ClientCredentials(
            cls.name, options.token_url, options.client_id, options.client_secret
        )
        return build_client(
            cls.name,
            options.base_url,
            timeout_seconds=options.timeout_seconds,
            transport=transport,
            auth=auth,
        )

    def check(self) -> None:
        health = self.remote.health()
        if health.status != "UP":
            raise AuthorityError(self.name, f"the API reports status {health.status!r}")
        self.require_api_major(health.api_version, SUPPORTED_MAJOR)

    def pull(
        self, cursor: str | None, subscriptions: Sequence[PersonalIdentity]
    ) -> Iterator[NativeRecord]:
        # The cursor is opaque and names a page, not a record: each record resumes from
        # the page it came on (re-reading it is harmless), the last one from the next page.
        page_cursor = cursor or None
        while True:
            page = self.remote.events(page_cursor, self.options.page_size)
            for index, item in enumerate(page.events):
                source_id = item.get("event_id")
                if not isinstance(source_id, str) or not source_id:
                    raise AuthorityError(self.name, "an event without event_id arrived; stopped")
                last = index == len(page.events) - 1
                resume = page.next_cursor if last and page.next_cursor else page_cursor
                yield NativeRecord(
                    source=self.name, source_id=source_id, cursor=resume or "", payload=dict(item)
                )
            if not page.has_more or not page.events or not page.next_cursor:
                return
            page_cursor = page.next_cursor

    def map(self, native: NativeRecord) -> CommonRecord:
        event = parse_typed(self.name, native, "event_type", EVENT_TYPES, "an event type")
        codes = self.mapping.codes_for(self.name, native.source_id, strict=self.strict_mapping)
        with record_problems(self.name, native.source_id):
            body: Any
            if isinstance(event, ProgrammeEvent):
                d = event.data
                body = Intervention(
                    start=d.start_date,
                    end=d.end_date,
                    type=codes.map(InterventionType, d.programme_code, field="programme_code"),
                    status=codes.map(InterventionStatus, d.status, field="status"),
                    provider=self.name,
                    extent_percent=d.extent_percent,
                )
            elif isinstance(event, BenefitEvent):
                b = event.data
                body = Benefit(
                    start=b.period_start,
                    end=b.period_end,
                    type=codes.map(BenefitType, b.benefit_code, field="benefit_code"),
                    # Activity support is paid per day of a five-day week.
                    extent_percent=b.days_per_week * 20 if b.days_per_week is not None else None,
                )
            elif isinstance(event, ReferralEvent):
                body = Referral(
                    referring_party=self.name,
                    received_on=event.data.referral_date,
                    reason=codes.map(ReferralReason, event.data.reason_code, field="reason_code"),
                )
            else:
                assert isinstance(event, DeregistrationEvent)
                dereg = event.data
                code = dereg.deregistration_code
                body = Closure(
                    closed_on=dereg.deregistered_on,
                    reason=codes.map(ClosureReason, code, field="deregistration_code"),
                    outcome=codes.map(OutcomeType, code, field="deregistration_code"),
                )
            person = parse_person(
                self.name,
                native.source_id,
                event.participant.personal_identity_number,
                "participant.personal_identity_number",
            )
            return CommonRecord(
                source=self.name,
                source_id=native.source_id,
                person=person,
                updated_at=event.occurred_at.astimezone(UTC),
                body=body,
                protected_identity=event.participant.protected_identity,
                unmapped=tuple(codes.unmapped),
                mapping_version=self.mapping.version,
            )

    def _message(self, transfer: Transfer) -> dict[str, object]:
        body: dict[str, object] = {
            "category": transfer.category.value,
            "origin": transfer.origin,
            "purpose": transfer.purpose.value,
            "source_reference": transfer.source_id,
            "updated_at": transfer.updated_at.isoformat(),
            "content": transfer.body.model_dump(mode="json"),
        }
        if transfer.person is not None:
            body["personal_identity_number"] = transfer.person.number
        else:
            body["participant_reference"] = transfer.participant
        return body

    def push(self, transfer: Transfer) -> PushResult:
        reference, replayed = self.remote.send_message(
            transfer.idempotency_key, self._message(transfer)
        )
        return PushResult(accepted=True, duplicate=replayed, reference=reference)

    def push_many(self, transfers: Sequence[Transfer]) -> list[PushResult]:
        messages = [(t.idempotency_key, self._message(t)) for t in transfers]
        return self.remote.send_messages(messages)

    def subscribe(self, identity: PersonalIdentity) -> None:
        self.remote.subscribe(identity.number)

    def unsubscribe(self, identity: PersonalIdentity) -> None:
        self.remote.cancel(identity.number)

    @classmethod
    def sandbox_app(cls, settings: SandboxSettings) -> ASGIApp:
        from connectors.af.sandbox import create_app

        return create_app(settings)

    @classmethod
    def sandbox_options(cls, base_url: str, home: Path) -> dict[str, Any]:
        return {
            "base_url": base_url,
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
        }
