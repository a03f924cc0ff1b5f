"""The Arbetsförmedlingen connector: OAuth 2.0 client credentials, an opaque event cursor."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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
    EventPage,
    ProgrammeEvent,
    ReferralEvent,
)
from connectors.guards import as_utc
from hub.connector import (
    AuthorityError,
    Connector,
    ConnectorConfigError,
    HttpOptions,
    RefusedRequestError,
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
from hub.model.records import (
    MAX_CURSOR_LENGTH,
    CommonRecord,
    NativeRecord,
    PushResult,
    Transfer,
)
from hub.model.vocab import Category

"""The longest next_cursor taken: it is stored and goes back in a query string."""
MAX_EMPTY_PAGES = 100
"""Empty pages saying has_more followed in a row before the pull is stopped as broken."""
MAX_ID_LENGTH = 200  # NativeRecord.source_id


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
            default=TOKEN_PATH,
            description="Token endpoint: absolute, or a path under base_url as the API's paths.",
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
            cls.name,
            options.token_url,
            options.client_id,
            options.client_secret,
            base_url=options.base_url,
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
        # A next_cursor to follow must be new in this pull (one seen before would go round
        # forever) and fit in a query string; has_more without one is refused rather than
        # ending quietly, which would read the same page again every run. A page whose
        # next_cursor is refused (or one already seen) is still yielded, each record
        # resuming from that page. An empty page that says has_more is followed (stopping
        # there would ask for that same empty page every night and never get past it), but
        # not more than MAX_EMPTY_PAGES of them in a row.
        page_cursor = cursor or None
        seen = {page_cursor}
        empty = 0
        while True:
            page = self._page(page_cursor, given=page_cursor == (cursor or None))
            following = page.next_cursor
            broken = _broken_link(following, page.has_more, seen)
            if broken or following in seen:  # never resume from a page already behind
                following = None
            for index, item in enumerate(page.events):
                source_id = item.get("event_id")
                if (
                    not isinstance(source_id, str)
                    or not 0 < len(source_id) <= MAX_ID_LENGTH
                    or not source_id.isprintable()  # it goes into messages staff read
                ):
                    raise AuthorityError(self.name, "an event without event_id arrived; stopped")
                last = index == len(page.events) - 1
                resume = following if last and following else page_cursor
                yield NativeRecord(
                    source=self.name, source_id=source_id, cursor=resume or "", payload=dict(item)
                )
            if broken:
                raise AuthorityError(
                    self.name, f"{broken}; Arbetsförmedlingen's paging is broken, stopped"
                )
            if not page.has_more or not following:
                return
            empty = 0 if page.events else empty + 1
            if empty >= MAX_EMPTY_PAGES:
                raise AuthorityError(
                    self.name,
                    f"{empty} empty pages in a row each said has_more; Arbetsförmedlingen's "
                    "paging is broken, stopped (the next run starts from the last event read)",
                )
            seen.add(following)
            page_cursor = following

    def _page(self, cursor: str | None, *, given: bool) -> EventPage:
        """One page of events. The cursor the run started from (the stored one, or one
        given with --since) is opaque, so only Arbetsförmedlingen can say it is no cursor:
        its 400 is then a configuration error naming the cursor (a mistyped --since is
        answered on the spot and never counts towards pausing)."""
        try:
            return self.remote.events(cursor, self.options.page_size)
        except RefusedRequestError as exc:
            if not (given and cursor and exc.status == 400):
                raise
            raise ConnectorConfigError(
                self.name,
                "Arbetsförmedlingen refused the cursor (the stored one, or the one given with "
                "--since; HTTP 400); give one it handed out, or run `evi sync --connector af "
                "--from-start` once to read from the beginning",
            ) from None

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
                updated_at=as_utc(self.name, native.source_id, "occurred_at", event.occurred_at),
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


def _broken_link(following: str | None, more: bool, seen: set[str | None]) -> str | None:
    """Why ``following`` (a page's next_cursor) cannot be kept or followed, or ``None``.

    ``more``: the page says there is more, so the cursor will be followed.
    """
    if following is None:
        return "the events answer says has_more but gives no next_cursor" if more else None
    if not 0 < len(following) <= MAX_CURSOR_LENGTH or not following.isprintable():
        return (
            "the events answer has a next_cursor that is empty, longer than "
            f"{MAX_CURSOR_LENGTH} characters or holds control characters"
        )
    if more and following in seen:
        return "the events answer gave a next_cursor already followed in this pull (a circle)"
    return None
