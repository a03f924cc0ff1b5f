"""For bench/sync.py: dlt pulling the four sandbox APIs into SQLite, run as a child process.

    python bench/_sync_dlt.py --config CONFIG.json

It reads what the hub's connectors read, page by page with the same page sizes and the
same authentication: a static bearer token (kommun), OAuth 2.0 client credentials with
HTTP Basic client authentication (af), and a TLS client certificate (fk, region; the region
search names the same people the hub asks about). Every record becomes a row of one table,
``records``, merged (``write_disposition="merge"``) on the primary key ``(source,
source_id)``, which the sqlalchemy destination creates as a PRIMARY KEY (the index the hub's
``UNIQUE (source, source_id)`` gives it); the authority's record is kept whole in a JSON
column, as the hub keeps its body. Prints ``{"pulled": N, "rows": M}`` as JSON.

The config names: ``urls`` (authority -> base URL), ``tls`` (cert, key, ca),
``numbers_file`` (JSON list of the numbers the region search names), ``database`` and
``pipelines_dir``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from typing import Any

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

import dlt
from dlt.sources.helpers.requests import Client
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import (
    BearerTokenAuth,
    OAuth2ClientCredentials,
)
from dlt.sources.helpers.rest_client.paginators import (
    BaseReferencePaginator,
    PageNumberPaginator,
)

# The sandboxes' public test credentials (see connectors/*/client.py).
KOMMUN_TOKEN = "kommun-sandbox-token"
AF_CLIENT_ID, AF_CLIENT_SECRET = "evi-hub", "af-sandbox-secret"
# The hub connectors' default page sizes.
PAGE = {"kommun": 200, "af": 500, "fk": 500, "region": 500}

Page = list[dict[str, Any]]


def rows(source: str, items: list[dict[str, Any]], id_key: str, cursor_key: str) -> Page:
    return [
        {"source": source, "source_id": i[id_key], "cursor": str(i[cursor_key]), "payload": i}
        for i in items
    ]


class BasicClientCredentials(OAuth2ClientCredentials):
    """OAuth 2.0 client credentials with the client authenticated by HTTP Basic (RFC 6749
    §2.3.1), as Arbetsförmedlingen's token endpoint requires; dlt sends them in the form."""

    def build_access_token_request(self) -> dict[str, Any]:
        return {
            "auth": (self.client_id, self.client_secret),
            "data": {"grant_type": "client_credentials"},
        }


class HasMoreCursor(BaseReferencePaginator):
    """``next_cursor`` while ``has_more`` (the af API always returns a next cursor)."""

    def update_state(self, response: Any, data: list[Any] | None = None) -> None:
        body = response.json()
        more = body.get("has_more") and body.get("events")
        self._next_reference = body.get("next_cursor") if more else None

    def update_request(self, request: Any) -> None:
        request.params = {**(request.params or {}), "cursor": self._next_reference}


def mtls_session(tls: dict[str, str]) -> Any:
    session = Client(raise_for_status=False).session
    session.cert = (tls["cert"], tls["key"])
    session.verify = tls["ca"]
    # Else REQUESTS_CA_BUNDLE (set on many machines) silently replaces the test CA.
    session.trust_env = False
    return session


def make_source(config: dict[str, Any], counter: dict[str, int]) -> Any:
    urls, tls = config["urls"], config["tls"]
    with open(config["numbers_file"], encoding="utf-8") as fh:
        numbers: list[str] = json.load(fh)

    def counted(source: str, page: Page) -> Page:
        counter[source] = counter.get(source, 0) + len(page)
        return page

    @dlt.resource(name="kommun", table_name="records")
    def kommun() -> Iterator[Page]:
        client = RESTClient(
            base_url=urls["kommun"],
            auth=BearerTokenAuth(KOMMUN_TOKEN),
            paginator=PageNumberPaginator(base_page=1, page_param="sida", total_path="antalSidor"),
            data_selector="handelser",
        )
        params = {"franLopnummer": 1, "antal": PAGE["kommun"]}
        for page in client.paginate("/ekonomiskt-bistand/v2/handelser", params=params):
            yield counted("kommun", rows("kommun", page, "handelseId", "lopnummer"))

    @dlt.resource(name="af", table_name="records")
    def af() -> Iterator[Page]:
        auth = BasicClientCredentials(
            access_token_url=urls["af"] + "/oauth2/token",
            client_id=AF_CLIENT_ID,
            client_secret=AF_CLIENT_SECRET,
        )
        client = RESTClient(
            base_url=urls["af"], auth=auth, paginator=HasMoreCursor(), data_selector="events"
        )
        for page in client.paginate("/participants/v1/events", params={"limit": PAGE["af"]}):
            yield counted("af", rows("af", page, "event_id", "occurred_at"))

    @dlt.resource(name="fk", table_name="records")
    def fk() -> Iterator[Page]:
        # andradFran is inclusive: go on from the last time seen, skip what was yielded.
        client = RESTClient(base_url=urls["fk"], session=mtls_session(tls))
        since: str | None = None
        seen: set[str] = set()
        while True:
            params: dict[str, Any] = {"max": PAGE["fk"]}
            if since:
                params["andradFran"] = since
            answer = client.get("/samverkan/api/v1/arenden", params=params)
            answer.raise_for_status()
            cases = answer.json()["arenden"]
            fresh = []
            for case in cases:
                changed = case["andradTidpunkt"]
                if changed == since and case["arendeId"] in seen:
                    continue
                if changed != since:
                    since, seen = changed, set()
                seen.add(case["arendeId"])
                fresh.append(case)
            yield counted("fk", rows("fk", fresh, "arendeId", "andradTidpunkt"))
            if len(cases) < PAGE["fk"] or not fresh:
                return

    @dlt.resource(name="region", table_name="records")
    def region() -> Iterator[Page]:
        client = RESTClient(base_url=urls["region"], session=mtls_session(tls))
        offset = 0
        while True:
            body = {
                "personnummer": numbers,
                "uppdateradFranMs": None,
                "offset": offset,
                "limit": PAGE["region"],
            }
            answer = client.post("/rehab/v3/sok", json=body)
            answer.raise_for_status()
            data = answer.json()
            posts = data["poster"]
            yield counted("region", rows("region", posts, "postId", "uppdateradMs"))
            offset += len(posts)
            if not posts or offset >= data["traffar"]:
                return

    @dlt.source(name="authorities")
    def authorities() -> Any:
        resources = [kommun, af, fk, region]
        for resource in resources:
            resource.apply_hints(
                primary_key=["source", "source_id"],
                write_disposition="merge",
                columns={"payload": {"data_type": "json"}},
            )
        return resources

    return authorities()


def main() -> int:
    parser = argparse.ArgumentParser(description="dlt side of bench/sync.py")
    parser.add_argument("--config", required=True)
    args = parser.parse_args()
    with open(args.config, encoding="utf-8") as fh:
        config = json.load(fh)
    counter: dict[str, int] = {}
    pipeline = dlt.pipeline(
        pipeline_name="evi_bench",
        pipelines_dir=config["pipelines_dir"],
        destination=dlt.destinations.sqlalchemy(
            credentials=f"sqlite:///{config['database']}", create_primary_keys=True
        ),
        dataset_name="bench",
        progress=None,
    )
    pipeline.run(make_source(config, counter))
    with pipeline.sql_client() as client:
        stored = client.execute_sql("SELECT COUNT(*) FROM records")
    print(json.dumps({"pulled": sum(counter.values()), "by_source": counter, "rows": stored[0][0]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
