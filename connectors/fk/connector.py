"""The Försäkringskassan connector: mTLS, a since-timestamp feed, compact dates."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeGuard

import httpx
from pydantic import Field

from connectors.fk.client import (
    CASE_TYPES,
    EXTENT,
    SUPPORTED_MAJOR,
    FkApi,
    Forman,
    Rehab,
    Remiss,
)
from connectors.guards import as_utc, latest_plausible
from connectors.sandbox_kit import mtls
from hub.connector import (
    AuthorityError,
    ClientCertificateOptions,
    ConnectorConfigError,
    SandboxSettings,
)
from hub.connector.asgi import ASGIApp
from hub.connector.batch import BATCH_LIMIT
from hub.connector.mtls import ClientCertificateConnector
from hub.connector.native import parse_person, parse_typed, record_problems
from hub.model.codes import BenefitType, InterventionStatus, InterventionType, ReferralReason
from hub.model.domain import Benefit, Intervention, Referral
from hub.model.identity import PersonalIdentity
from hub.model.records import CommonRecord, NativeRecord, PushResult, Transfer
from hub.model.vocab import Category


class FkConnector(ClientCertificateConnector):
    """Försäkringskassan: benefits, work-oriented rehabilitation and referrals."""

    name = "fk"
    authority = "Försäkringskassan"
    version = "1.0.0"
    delivers = frozenset({Category.REFERRAL, Category.BENEFIT, Category.INTERVENTION})
    receives = frozenset({Category.ASSESSMENT, Category.PLAN, Category.OUTCOME, Category.HEALTH})
    push_batch_size = BATCH_LIMIT

    class Options(ClientCertificateOptions):
        page_size: int = Field(default=500, ge=1, le=1000, description="Cases per call.")

    options: Options

    def __init__(self, options: Any, client: httpx.Client, **kwargs: Any) -> None:
        super().__init__(options, client, **kwargs)
        self.remote = FkApi(self.api)

    def check(self) -> None:
        self.require_api_major(self.remote.ping().apiVersion, SUPPORTED_MAJOR)

    def pull(
        self, cursor: str | None, subscriptions: Sequence[PersonalIdentity]
    ) -> Iterator[NativeRecord]:
        # andradFran is inclusive: the next call starts at the last time seen, and the
        # records already yielded at exactly that time are skipped. Times are compared as
        # instants (an offset may change with daylight saving time), and they must never go
        # backwards, lie before the andradFran asked for, or lie in the future: any of those
        # would send the feed round in circles or store a cursor that skips cases.
        since_text = cursor or None
        since = _stored_since(self.name, since_text)
        latest = latest_plausible()
        seen_at_since: set[str] = set()
        while True:
            cases = self.remote.arenden(since_text, self.options.page_size).arenden
            fresh = 0
            for item in cases:
                source_id, changed = item.get("arendeId"), item.get("andradTidpunkt")
                if not _is_id(source_id) or not isinstance(changed, str):
                    raise AuthorityError(
                        self.name, "a case without arendeId or andradTidpunkt arrived; stopped"
                    )
                at = _instant(changed)
                if at is None or at > latest:
                    raise AuthorityError(
                        self.name,
                        f"case {source_id} has an andradTidpunkt that is not a time with a UTC "
                        "offset, is out of range or lies in the future; the feed cannot go on "
                        "from it, stopped",
                    )
                if since is None or at > since:
                    since, since_text, seen_at_since = at, changed, set()
                elif at < since:
                    raise AuthorityError(
                        self.name,
                        f"case {source_id} has an andradTidpunkt before the cases already read "
                        "or the andradFran asked for (the feed goes backwards); "
                        "Försäkringskassan's feed is broken, stopped",
                    )
                elif source_id in seen_at_since:
                    continue
                seen_at_since.add(source_id)
                fresh += 1
                yield NativeRecord(
                    source=self.name, source_id=source_id, cursor=changed, payload=dict(item)
                )
            if len(cases) < self.options.page_size:
                return
            if fresh == 0:
                raise AuthorityError(
                    self.name,
                    f"more than {self.options.page_size} cases share one andradTidpunkt; raise "
                    f"page_size with `evi connectors configure {self.name} --set page_size=…`",
                )

    def map(self, native: NativeRecord) -> CommonRecord:
        case = parse_typed(self.name, native, "arendetyp", CASE_TYPES, "a case type")
        codes = self.mapping.codes_for(self.name, native.source_id, strict=self.strict_mapping)
        with record_problems(self.name, native.source_id):
            body: Any
            if isinstance(case, Forman):
                body = Benefit(
                    start=case.periodFrom,
                    end=case.periodTom,
                    type=codes.map(BenefitType, case.formanskod, field="formanskod"),
                    extent_percent=EXTENT[case.omfattning],
                )
            elif isinstance(case, Rehab):
                body = Intervention(
                    start=case.periodFrom,
                    end=case.periodTom,
                    type=codes.map(InterventionType, case.atgardskod, field="atgardskod"),
                    status=codes.map(InterventionStatus, case.atgardsstatus, field="atgardsstatus"),
                    provider=self.name,
                )
            else:
                assert isinstance(case, Remiss)
                body = Referral(
                    referring_party=self.name,
                    received_on=case.remissdatum,
                    reason=codes.map(ReferralReason, case.anledning, field="anledning"),
                )
            return CommonRecord(
                source=self.name,
                source_id=native.source_id,
                person=parse_person(self.name, native.source_id, case.personnummer, "personnummer"),
                updated_at=as_utc(
                    self.name, native.source_id, "andradTidpunkt", case.andradTidpunkt
                ),
                body=body,
                protected_identity=case.sekretessmarkerad,
                unmapped=tuple(codes.unmapped),
                mapping_version=self.mapping.version,
            )

    def _message(self, transfer: Transfer) -> dict[str, object]:
        body: dict[str, object] = {
            "informationsmangd": transfer.category.value,
            "avsandare": transfer.origin,
            "andamal": transfer.purpose.value,
            "kallreferens": transfer.source_id,
            "andradTidpunkt": transfer.updated_at.isoformat(timespec="milliseconds"),
            "innehall": transfer.body.model_dump(mode="json"),
        }
        if transfer.person is not None:
            body["personnummer"] = transfer.person.number
        else:
            body["deltagarreferens"] = transfer.participant
        return body

    def push(self, transfer: Transfer) -> PushResult:
        reference, replayed = self.remote.underratta(
            transfer.idempotency_key, self._message(transfer)
        )
        return PushResult(accepted=True, duplicate=replayed, reference=reference)

    def push_many(self, transfers: Sequence[Transfer]) -> list[PushResult]:
        messages = [(t.idempotency_key, self._message(t)) for t in transfers]
        return self.remote.underratta_flera(messages)

    def subscribe(self, identity: PersonalIdentity) -> None:
        self.remote.bevaka(identity.number)

    def unsubscribe(self, identity: PersonalIdentity) -> None:
        self.remote.upphor(identity.number)

    @classmethod
    def sandbox_app(cls, settings: SandboxSettings) -> ASGIApp:
        from connectors.fk.sandbox import create_app

        return create_app(settings)

    @classmethod
    def sandbox_options(cls, base_url: str, home: Path) -> dict[str, Any]:
        return mtls.client_options(base_url, home)

    @classmethod
    def sandbox_server_options(cls, home: Path) -> dict[str, Any]:
        return mtls.server_options(home)


MAX_ID_LENGTH = 200  # NativeRecord.source_id


def _is_id(value: object) -> TypeGuard[str]:
    # printable: an id goes into messages staff read on a terminal or a page
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH and value.isprintable()


def _instant(text: str) -> datetime | None:
    """``text`` (ISO 8601 with an offset) as a UTC time, or ``None`` if it is not one."""
    try:
        value = datetime.fromisoformat(text)
        return value.astimezone(UTC) if value.utcoffset() is not None else None
    except (OverflowError, OSError, ValueError):
        return None


def _stored_since(connector: str, cursor: str | None) -> datetime | None:
    if not cursor:
        return None
    since = _instant(cursor)
    if since is None or since > latest_plausible():
        raise ConnectorConfigError(
            connector,
            "the cursor (the stored one, or the one given with --since) is not a change time "
            "the feed can go on from; give one it is, or run `evi sync --connector fk "
            "--from-start` once to read from the beginning",
        )
    return since
