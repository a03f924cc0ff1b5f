"""The region connector: health status for coordinated rehabilitation, never diagnoses."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import Field

from connectors.region.client import (
    GRADE_PERCENT,
    POST_TYPES,
    SUPPORTED_MAJOR,
    RegionApi,
    Rehabstatus,
    Remiss,
    forbidden_fields,
)
from connectors.sandbox_kit import mtls
from hub.connector import (
    AuthorityError,
    ClientCertificateOptions,
    ConnectorConfigError,
    InvalidRecordError,
    SandboxSettings,
)
from hub.connector.asgi import ASGIApp
from hub.connector.batch import BATCH_LIMIT
from hub.connector.mtls import ClientCertificateConnector
from hub.connector.native import parse_person, parse_typed, record_problems
from hub.model.codes import ReferralReason
from hub.model.domain import HealthStatus, Referral
from hub.model.identity import PersonalIdentity
from hub.model.records import CommonRecord, NativeRecord, PushResult, Transfer
from hub.model.vocab import Category


class RegionConnector(ClientCertificateConnector):
    """Regionen: sick-leave certificate, treatment contact, rehab coordinator; referrals."""

    name = "region"
    authority = "Regionen (hälso- och sjukvård)"
    version = "1.0.0"
    delivers = frozenset({Category.HEALTH, Category.REFERRAL})
    receives = frozenset({Category.PLAN, Category.OUTCOME})
    push_batch_size = BATCH_LIMIT

    class Options(ClientCertificateOptions):
        page_size: int = Field(default=500, ge=1, le=1000, description="Records per search.")

    options: Options

    def __init__(self, options: Any, client: httpx.Client, **kwargs: Any) -> None:
        super().__init__(options, client, **kwargs)
        self.remote = RegionApi(self.api)

    def check(self) -> None:
        self.require_api_major(self.remote.ping().version, SUPPORTED_MAJOR)

    def pull(
        self, cursor: str | None, subscriptions: Sequence[PersonalIdentity]
    ) -> Iterator[NativeRecord]:
        # The region keeps no list: every search names the people the hub follows.
        numbers = [identity.formatted() for identity in subscriptions]
        if not numbers:
            return
        since = _cursor(self.name, cursor)
        offset = 0
        while True:
            answer = self.remote.sok(numbers, since, offset, self.options.page_size)
            for item in answer.poster:
                source_id, changed = item.get("postId"), item.get("uppdateradMs")
                if not isinstance(source_id, str) or not isinstance(changed, int):
                    raise AuthorityError(
                        self.name, "a record without postId or uppdateradMs arrived; stopped"
                    )
                yield NativeRecord(
                    source=self.name, source_id=source_id, cursor=str(changed), payload=dict(item)
                )
            offset += len(answer.poster)
            if not answer.poster or offset >= answer.traffar:
                return

    def map(self, native: NativeRecord) -> CommonRecord:
        clinical = forbidden_fields(native.payload)
        if clinical:
            raise InvalidRecordError(
                self.name,
                native.source_id,
                [
                    f"{path}: clinical detail is never accepted (the hub takes no diagnoses); "
                    "ask the region to remove the field"
                    for path in clinical
                ],
            )
        post = parse_typed(self.name, native, "typ", POST_TYPES, "a record type")
        codes = self.mapping.codes_for(self.name, native.source_id, strict=self.strict_mapping)
        with record_problems(self.name, native.source_id):
            body: Any
            if isinstance(post, Rehabstatus):
                sick = post.sjukskrivning
                degree = GRADE_PERCENT.get(sick.grad) if sick else None
                if sick and degree is None:
                    raise InvalidRecordError(
                        self.name, native.source_id, ["sjukskrivning.grad: not a known grade"]
                    )
                body = HealthStatus(
                    sick_leave_start=sick.fromDatum if sick else None,
                    sick_leave_end=sick.tomDatum if sick else None,
                    sick_leave_degree=degree,
                    ongoing_treatment_contact=post.pagaendeVardkontakt,
                    rehab_coordinator_assigned=post.rehabkoordinator.tilldelad,
                )
            else:
                assert isinstance(post, Remiss)
                body = Referral(
                    referring_party=self.name,
                    received_on=post.remissdatum,
                    reason=codes.map(ReferralReason, post.remissorsak, field="remissorsak"),
                )
            return CommonRecord(
                source=self.name,
                source_id=native.source_id,
                person=parse_person(
                    self.name, native.source_id, post.patient.personnummer, "patient.personnummer"
                ),
                updated_at=datetime.fromtimestamp(post.uppdateradMs / 1000, UTC),
                body=body,
                protected_identity=post.patient.skyddadIdentitet,
                unmapped=tuple(codes.unmapped),
                mapping_version=self.mapping.version,
            )

    def _message(self, transfer: Transfer) -> dict[str, object]:
        body: dict[str, object] = {
            "kategori": transfer.category.value,
            "avsandare": transfer.origin,
            "andamal": transfer.purpose.value,
            "kallreferens": transfer.source_id,
            "uppdateradMs": int(transfer.updated_at.timestamp() * 1000),
            "innehall": transfer.body.model_dump(mode="json"),
        }
        if transfer.person is not None:
            body["patient"] = {"personnummer": transfer.person.formatted()}
        else:
            body["deltagarreferens"] = transfer.participant
        return body

    def push(self, transfer: Transfer) -> PushResult:
        reference, replayed = self.remote.meddela(transfer.idempotency_key, self._message(transfer))
        return PushResult(accepted=True, duplicate=replayed, reference=reference)

    def push_many(self, transfers: Sequence[Transfer]) -> list[PushResult]:
        messages = [(t.idempotency_key, self._message(t)) for t in transfers]
        return self.remote.meddela_flera(messages)

    @classmethod
    def sandbox_app(cls, settings: SandboxSettings) -> ASGIApp:
        from connectors.region.sandbox import create_app

        return create_app(settings)

    @classmethod
    def sandbox_options(cls, base_url: str, home: Path) -> dict[str, Any]:
        return mtls.client_options(base_url, home)

    @classmethod
    def sandbox_server_options(cls, home: Path) -> dict[str, Any]:
        return mtls.server_options(home)


def _cursor(connector: str, cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return int(cursor)
    except ValueError:
        raise ConnectorConfigError(
            connector,
            "the stored cursor is not a time in milliseconds; run `evi sync "
            "--connector region --from-start` once to read from the beginning",
        ) from None
