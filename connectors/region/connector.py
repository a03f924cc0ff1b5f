"""The region connector: health status for coordinated rehabilitation, never diagnoses."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeGuard

import httpx
from pydantic import Field

from connectors.guards import OUT_OF_RANGE, latest_plausible
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
from hub.connector.native import field_name, parse_person, parse_typed, record_id, record_problems
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
    searches_people = True  # the region keeps no list: every search names the people

    class Options(ClientCertificateOptions):
        page_size: int = Field(
            default=500,
            ge=2,
            le=1000,
            description="Records per search (each page opens with the last record read again).",
        )

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
        # Paged by key, not by a growing offset: the search is ordered by uppdateradMs, and
        # each page is asked from the last uppdateradMs read (uppdateradFranMs is
        # inclusive), at the offset of the last record read among those with exactly that
        # millisecond, so the page opens with that record again (dropped). A record updated
        # at the region meanwhile moves to the end and is read again later (harmless:
        # records are upserted by postId); a growing offset would skip the record behind
        # it for good. If the page opens with another record, the boundary moved (a record
        # read there was updated): it is the first unread one, and nothing is skipped.
        # uppdateradMs is the cursor: a whole number, never a bool, never in the future,
        # never before the uppdateradFranMs asked for (so never going backwards). Any other
        # record read again means the region ignores offset (or a record was added among
        # the ones read at the boundary): stopped instead of asking forever; the next run
        # asks from that millisecond again. At most the pages the first answer's traffar
        # fills and one more for records updated meanwhile; the next run reads the rest.
        since = _cursor(self.name, cursor)
        latest = _ms(latest_plausible())
        limit = self.options.page_size
        previous = since or 0  # the last uppdateradMs read (or asked from)
        tied: set[str] = set()  # the postIds read whose uppdateradMs is `previous`
        last: tuple[Any, Any] | None = None  # (postId, uppdateradMs) of the last record read
        requests, most = 0, 1
        while requests < most:
            offset = len(tied) - 1 if last else 0
            answer = self.remote.sok(numbers, since, offset, limit)
            if not requests:
                most = -(-answer.traffar // limit) + 1
            requests += 1
            posts = answer.poster
            if last and posts and (posts[0].get("postId"), posts[0].get("uppdateradMs")) == last:
                posts = posts[1:]  # the record the page was asked to open with
            for item in posts:
                source_id, changed = item.get("postId"), item.get("uppdateradMs")
                if not _is_id(source_id) or type(changed) is not int:
                    raise AuthorityError(
                        self.name,
                        "a record without postId or uppdateradMs (a whole number) arrived; stopped",
                    )
                if not previous <= changed <= latest:
                    raise AuthorityError(self.name, _out_of_order(source_id, changed, latest))
                if changed > previous:
                    previous, tied = changed, set()
                elif source_id in tied:
                    raise AuthorityError(
                        self.name,
                        f"record {source_id} came again in the same search (the region "
                        "ignores offset); its search is broken, stopped",
                    )
                tied.add(source_id)
                last = (source_id, changed)
                yield NativeRecord(
                    source=self.name, source_id=source_id, cursor=str(changed), payload=dict(item)
                )
            since = previous
            if not posts or offset + len(answer.poster) >= answer.traffar:
                return

    def map(self, native: NativeRecord) -> CommonRecord:
        clinical = forbidden_fields(native.payload)
        if clinical:
            raise InvalidRecordError(
                self.name,
                record_id(native.source_id),
                [
                    f"{field_name(path)}: clinical detail is never accepted (the hub takes no "
                    "diagnoses); ask the region to remove the field"
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
                updated_at=_time(self.name, native.source_id, post.uppdateradMs),
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


MAX_ID_LENGTH = 200  # NativeRecord.source_id


def _cursor(connector: str, cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        value = int(cursor)
    except ValueError:
        value = -1
    if not 0 <= value <= _ms(latest_plausible()):
        raise ConnectorConfigError(
            connector,
            "the cursor (the stored one, or the one given with --since) is not a time in "
            "milliseconds the feed can go on from; give one it is, or run `evi sync "
            "--connector region --from-start` once to read from the beginning",
        )
    return value


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _time(connector: str, source_id: str, ms: int) -> datetime:
    """Epoch milliseconds as a UTC time, or InvalidRecordError naming uppdateradMs."""
    try:
        return datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):  # 10**20: past year 9999, or too big
        raise InvalidRecordError(connector, source_id, [f"uppdateradMs: {OUT_OF_RANGE}"]) from None


def _is_id(value: object) -> TypeGuard[str]:
    # printable: an id goes into messages staff read on a terminal or a page
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH and value.isprintable()


def _out_of_order(source_id: str, changed: int, latest: int) -> str:
    if changed > latest:
        why = "an uppdateradMs in the future"
    elif changed < 0:
        why = "a negative uppdateradMs"
    else:
        why = "an uppdateradMs before the records already read or the uppdateradFranMs asked for"
    return f"record {source_id} has {why}; the region's search is broken, stopped"
