"""The municipality connector: pulls its events, maps them, pushes messages, follows people."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeGuard
from zoneinfo import ZoneInfo

import httpx
from pydantic import Field, SecretStr

from connectors.guards import OUT_OF_RANGE
from connectors.kommun.client import (
    EVENT_TYPES,
    MAX_LOPNUMMER,
    SANDBOX_TOKEN,
    SUPPORTED_MAJOR,
    Avslut,
    Bistand,
    HandelseBase,
    Insats,
    KommunApi,
    Remiss,
)
from hub.connector import (
    AuthorityError,
    Connector,
    ConnectorConfigError,
    HttpOptions,
    InvalidRecordError,
    SandboxSettings,
    build_client,
)
from hub.connector.asgi import ASGIApp
from hub.connector.auth import BearerToken
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

STOCKHOLM = ZoneInfo("Europe/Stockholm")
MAX_ID_LENGTH = 200  # NativeRecord.source_id


class KommunConnector(Connector):
    """Kommunen: försörjningsstöd (ekonomiskt bistånd) and the labour-market unit."""

    name = "kommun"
    authority = "Kommunen (ekonomiskt bistånd och arbetsmarknadsenheten)"
    version = "1.0.0"
    delivers = frozenset(
        {Category.REFERRAL, Category.BENEFIT, Category.INTERVENTION, Category.OUTCOME}
    )
    receives = frozenset({Category.REFERRAL, Category.ASSESSMENT, Category.PLAN, Category.OUTCOME})
    push_batch_size = BATCH_LIMIT

    class Options(HttpOptions):
        token: SecretStr = Field(description="API token issued by the municipality.")
        page_size: int = Field(default=200, ge=1, le=500, description="Events per page.")

    options: Options

    def __init__(self, options: Any, client: httpx.Client, **kwargs: Any) -> None:
        super().__init__(options, client, **kwargs)
        self.remote = KommunApi(self.api)

    @classmethod
    def build_client(
        cls, options: Any, *, transport: httpx.BaseTransport | None = None
    ) -> httpx.Client:
        return build_client(
            cls.name,
            options.base_url,
            timeout_seconds=options.timeout_seconds,
            transport=transport,
            auth=BearerToken(options.token),
        )

    # -- contract ---------------------------------------------------------------------
    def check(self) -> None:
        self.require_api_major(self.remote.status().version, SUPPORTED_MAJOR)

    def pull(
        self, cursor: str | None, subscriptions: Sequence[PersonalIdentity]
    ) -> Iterator[NativeRecord]:
        # Pages are numbered from one franLopnummer, and the answer is checked against
        # what was asked (see docs/connectors.md): the page number asked for, antalSidor
        # no more than totaltAntal fills, lopnummer at or after franLopnummer and rising
        # strictly. Anything else would repeat pages forever or store a cursor that skips
        # events; it stops the pull after the events already yielded.
        start = _cursor(self.name, cursor)
        antal = self.options.page_size
        page, last_page = 1, 0
        previous = start - 1
        while True:
            answer = self.remote.handelser(start, page, antal)
            if answer.sida != page:
                raise AuthorityError(
                    self.name,
                    f"asked for page {page} of the events and got another page (sida); "
                    "the municipality's paging is broken, stopped",
                )
            filled = max(1, -(-answer.totaltAntal // antal))
            if answer.antalSidor > filled:
                raise AuthorityError(
                    self.name,
                    "the events answer claims more pages (antalSidor) than its total "
                    "(totaltAntal) fills; the municipality's paging is broken, stopped",
                )
            if not last_page:
                # At most the pages the first answer's total fills, and one more for events
                # that arrive meanwhile; anything after that is read by the next run.
                last_page = filled + 1
            for item in answer.handelser:
                source_id, lopnummer = item.get("handelseId"), item.get("lopnummer")
                if not _is_id(source_id) or type(lopnummer) is not int:
                    raise AuthorityError(
                        self.name,
                        "an event without handelseId or lopnummer (a whole number) arrived; "
                        "stopped",
                    )
                if not previous < lopnummer <= MAX_LOPNUMMER:
                    raise AuthorityError(self.name, _out_of_order(source_id, lopnummer, start))
                previous = lopnummer
                yield NativeRecord(
                    source=self.name,
                    source_id=source_id,
                    cursor=str(lopnummer),
                    payload=dict(item),
                )
            if page >= answer.antalSidor or page >= last_page or not answer.handelser:
                return
            page += 1

    def map(self, native: NativeRecord) -> CommonRecord:
        event = parse_typed(self.name, native, "handelseTyp", EVENT_TYPES, "an event type")
        codes = self.mapping.codes_for(self.name, native.source_id, strict=self.strict_mapping)
        with record_problems(self.name, native.source_id):
            body: Any
            if isinstance(event, Remiss):
                body = Referral(
                    referring_party=self.name,
                    received_on=event.remissdatum,
                    reason=codes.map(ReferralReason, event.orsak, field="orsak"),
                )
            elif isinstance(event, Bistand):
                body = Benefit(
                    start=event.beslutFran,
                    end=event.beslutTill,
                    type=codes.map(BenefitType, event.bistandstyp, field="bistandstyp"),
                )
            elif isinstance(event, Insats):
                body = Intervention(
                    start=event.startdatum,
                    end=event.slutdatum,
                    type=codes.map(InterventionType, event.insatskod, field="insatskod"),
                    status=codes.map(InterventionStatus, event.status, field="status"),
                    provider=self.name,
                    extent_percent=event.omfattningProcent,
                )
            else:
                assert isinstance(event, Avslut)
                body = Closure(
                    closed_on=event.avslutsdatum,
                    reason=codes.map(ClosureReason, event.avslutsorsak, field="avslutsorsak"),
                    outcome=codes.map(OutcomeType, event.utfall, field="utfall"),
                )
            return CommonRecord(
                source=self.name,
                source_id=native.source_id,
                person=parse_person(
                    self.name, native.source_id, event.personnummer, "personnummer"
                ),
                updated_at=_local_time(self.name, native.source_id, event),
                body=body,
                protected_identity=event.skyddadIdentitet,
                unmapped=tuple(codes.unmapped),
                mapping_version=self.mapping.version,
            )

    def _message(self, transfer: Transfer) -> dict[str, object]:
        body: dict[str, object] = {
            "kategori": transfer.category.value,
            "avsandare": transfer.origin,
            "andamal": transfer.purpose.value,
            "kallreferens": transfer.source_id,
            "andrad": transfer.updated_at.isoformat(),
            "uppgift": transfer.body.model_dump(mode="json"),
        }
        if transfer.person is not None:
            body["personnummer"] = transfer.person.formatted()
        else:
            body["deltagarreferens"] = transfer.participant
        return body

    def push(self, transfer: Transfer) -> PushResult:
        reference, replayed = self.remote.skicka_meddelande(
            transfer.idempotency_key, self._message(transfer)
        )
        return PushResult(accepted=True, duplicate=replayed, reference=reference)

    def push_many(self, transfers: Sequence[Transfer]) -> list[PushResult]:
        messages = [(t.idempotency_key, self._message(t)) for t in transfers]
        return self.remote.skicka_meddelanden(messages)

    def subscribe(self, identity: PersonalIdentity) -> None:
        self.remote.bevaka(identity.formatted())

    def unsubscribe(self, identity: PersonalIdentity) -> None:
        self.remote.avsluta_bevakning(identity.formatted())

    # -- sandbox ----------------------------------------------------------------------
    @classmethod
    def sandbox_app(cls, settings: SandboxSettings) -> ASGIApp:
        from connectors.kommun.sandbox import create_app

        return create_app(settings)

    @classmethod
    def sandbox_options(cls, base_url: str, home: Path) -> dict[str, Any]:
        return {"base_url": base_url, "token": SANDBOX_TOKEN}


def _cursor(connector: str, cursor: str | None) -> int:
    if not cursor:
        return 1
    try:
        value = int(cursor)
    except ValueError:
        value = MAX_LOPNUMMER + 1
    if value > MAX_LOPNUMMER:
        raise ConnectorConfigError(
            connector,
            "the cursor (the stored one, or the one given with --since) is not a sequence "
            "number the municipality can have handed out; give one it has, or run `evi sync "
            "--connector kommun --from-start` once to read from the beginning",
        )
    return max(value, 1)


def _is_id(value: object) -> TypeGuard[str]:
    # printable: an id goes into messages staff read on a terminal or a page
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH and value.isprintable()


def _out_of_order(source_id: str, lopnummer: int, start: int) -> str:
    if lopnummer > MAX_LOPNUMMER:
        why = "a lopnummer beyond any the municipality can have handed out (over 10^12)"
    elif lopnummer < start:
        why = "a lopnummer before the franLopnummer asked for"
    else:
        why = "a lopnummer not above the previous event's (a repeat, or out of order)"
    return f"event {source_id} has {why}; the municipality's feed is broken, stopped"


_LOCAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", re.ASCII)


def _local_time(connector: str, source_id: str, event: HandelseBase) -> datetime:
    # Exactly YYYY-MM-DD HH:MM:SS (fromisoformat alone would take other ISO forms too).
    text = event.andrad
    try:
        if not _LOCAL_TIME.fullmatch(text):
            raise ValueError(text)
        naive = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRecordError(
            connector, source_id, ["andrad: not a local time written YYYY-MM-DD HH:MM:SS"]
        ) from None
    try:
        return naive.replace(tzinfo=STOCKHOLM).astimezone(UTC)
    except (OverflowError, OSError, ValueError):  # 0001-01-01 00:00:00 is year 0 in UTC
        raise InvalidRecordError(connector, source_id, [f"andrad: {OUT_OF_RANGE}"]) from None
