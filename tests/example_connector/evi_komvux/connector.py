"""The komvux connector: a bearer token and an ``efter`` (after-id) feed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from hub.connector import Connector, HttpOptions, SandboxSettings, build_client
from hub.connector.asgi import ASGIApp
from hub.connector.auth import BearerToken
from hub.connector.native import parse_answer, parse_payload, parse_person, record_problems
from hub.model.codes import InterventionStatus, InterventionType
from hub.model.domain import Intervention
from hub.model.identity import PersonalIdentity
from hub.model.records import CommonRecord, NativeRecord
from hub.model.vocab import Category

SANDBOX_TOKEN = "komvux-sandbox-token"  # the example sandbox's public test credential


class Page(BaseModel):
    model_config = ConfigDict(extra="ignore")
    kursdeltaganden: list[dict[str, Any]]


class Kursdeltagande(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: int
    personnummer: str
    kurskod: str
    status: str
    start: date
    slut: date | None = None


class KomvuxConnector(Connector):
    """Komvux: study and guidance efforts of the municipal adult education."""

    name = "komvux"
    authority = "Komvux (kommunal vuxenutbildning)"
    version = "0.3.0"
    delivers = frozenset({Category.INTERVENTION})
    mapping_file: ClassVar[Path | None] = Path(__file__).with_name("komvux.toml")

    class Options(HttpOptions):
        token: SecretStr = Field(description="API token from the school's administration.")

    options: Options

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

    def check(self) -> None:
        self.api.json("GET", "/api/status")

    def pull(
        self, cursor: str | None, subscriptions: Sequence[PersonalIdentity]
    ) -> Iterator[NativeRecord]:
        after = int(cursor) if cursor else 0
        while True:
            data = self.api.json("GET", "/api/kursdeltaganden", params={"efter": after})
            page = parse_answer(self.name, "GET /api/kursdeltaganden", data, Page)
            for item in page.kursdeltaganden:
                after = int(item["id"])
                yield NativeRecord(
                    source=self.name, source_id=f"kd-{after}", cursor=str(after), payload=item
                )
            if not page.kursdeltaganden:
                return

    def map(self, native: NativeRecord) -> CommonRecord:
        row = parse_payload(self.name, native, Kursdeltagande)
        codes = self.mapping.codes_for(self.name, native.source_id, strict=self.strict_mapping)
        with record_problems(self.name, native.source_id):
            return CommonRecord(
                source=self.name,
                source_id=native.source_id,
                person=parse_person(self.name, native.source_id, row.personnummer, "personnummer"),
                updated_at=datetime.combine(row.start, datetime.min.time(), UTC),
                body=Intervention(
                    start=row.start,
                    end=row.slut,
                    type=codes.map(InterventionType, row.kurskod, field="kurskod"),
                    status=codes.map(InterventionStatus, row.status, field="status"),
                    provider=self.name,
                ),
                unmapped=tuple(codes.unmapped),
                mapping_version=self.mapping.version,
            )

    @classmethod
    def sandbox_app(cls, settings: SandboxSettings) -> ASGIApp:
        from evi_komvux.sandbox import create_app

        return create_app(settings)

    @classmethod
    def sandbox_options(cls, base_url: str, home: Path) -> dict[str, Any]:
        return {"base_url": base_url, "token": SANDBOX_TOKEN}
