"""The pages in Swedish (the default) and English, and the catalog that holds the Swedish.

The catalog must translate every text the pages can show, with the same placeholders, and
hold nothing else; a browser asking for Swedish or English gets it, any other browser gets
the configured default.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import get_args

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from web_support import token_for, web_client

from hub.context import Hub
from hub.model import codes
from hub.model.codes import ClosureReason, OutcomeType
from hub.model.domain import RecordBody
from hub.model.records import KIND_CATEGORY
from hub.settings import get_settings
from hub.stats.report import SMALL_CELL_LIMIT, Cell, FollowUpReport, Split
from hub.stats.text import LEFT_OUT, LEGEND, tables
from hub.web import stats_text
from hub.web.i18n import accepted_languages, catalog_path, translations
from hub.web.record_text import CODE_NAMES, FIELD_NAMES, KIND_NAMES, record_details
from hub.web.users import Role

HUB = Path(__file__).parents[2] / "hub"
# What hub/text/locale/babel.cfg and the pybabel command in docs/web.md say: the pages, and
# the names of fields and codes the pages and the register extract share.
SOURCES = [HUB / "web", HUB / "text"]
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
OPTIONS = {
    "**/templates/**.html": {
        "extensions": "jinja2.ext.i18n",
        "trim_blocks": "true",
        "lstrip_blocks": "true",
    }
}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "tr": (2,), "tr_n": (2, 3)}
KEYWORDS["NavLink"] = (1,)
CODE_ENUMS = [
    value
    for value in vars(codes).values()
    if isinstance(value, type) and issubclass(value, StrEnum) and value is not StrEnum
]


def source_messages() -> set[str | tuple[str, str]]:
    found: set[str | tuple[str, str]] = set()
    for source in SOURCES:
        for _file, _line, message, _comments, _context in extract_from_dir(
            source, METHODS, OPTIONS, KEYWORDS
        ):
            found.add(message if isinstance(message, str) else tuple(message))  # type: ignore[arg-type]
    return found


def test_the_swedish_catalog_translates_every_text_of_the_pages_and_nothing_else() -> None:
    with catalog_path("sv").open("rb") as po:
        catalog = read_po(po, locale="sv")
    ids = {m.id if isinstance(m.id, str) else tuple(m.id) for m in catalog if m.id}
    wanted = source_messages()
    assert len(wanted) > 150  # the extraction found the templates and the code
    assert "work with subsidy" in wanted  # and the names in hub/text the extract shows too
    assert sorted(map(str, wanted - ids)) == [], "texts without a Swedish translation"
    assert sorted(map(str, ids - wanted)) == [], "translations of texts no page shows"
    untranslated = [m.id for m in catalog if m.id and (m.fuzzy or not all(_strings(m.string)))]
    assert untranslated == []
    problems = [(m.id, errors) for m, errors in catalog.check()]
    assert problems == []  # e.g. a placeholder missing or misspelt in the Swedish


def _strings(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else value


def _full_report() -> FollowUpReport:
    """A report with someone in every row: every title, label and code is shown."""
    cell = Cell(count=7)
    split = Split(women=cell, men=cell, total=cell)
    every = {c.value: split for c in (*OutcomeType, *ClosureReason)}
    return FollowUpReport(
        period_start=date(2025, 1, 1),
        period_end=date(2025, 12, 31),
        decided_at=datetime(2026, 1, 1, tzinfo=UTC),
        correlation_id="c",
        new=split,
        active=split,
        closed=split,
        closed_by_outcome={k: v for k, v in every.items() if k in set(OutcomeType)},
        closed_by_reason={k: v for k, v in every.items() if k in set(ClosureReason)},
        left_out=cell,
        partly_left_out=cell,
    )


def test_every_title_label_and_code_of_the_report_has_a_text_of_the_page() -> None:
    shown = {LEFT_OUT[0], *LEFT_OUT[1]}
    for title, rows in tables(_full_report()):
        shown |= {title, *(label for label, _ in rows)}
    assert sorted(shown - set(stats_text.LABELS) - set(CODE_NAMES)) == []
    limits = {"limit": SMALL_CELL_LIMIT, "most": SMALL_CELL_LIMIT - 1}
    # the page's English legend is the CLI's, word for word
    assert [line % limits for line in stats_text.LEGEND] == list(LEGEND)


def test_every_code_and_field_of_the_common_model_has_a_name_on_the_pages() -> None:
    codes = {c.value for enum in CODE_ENUMS for c in enum}
    assert sorted(codes - set(CODE_NAMES)) == []
    fields = {
        name
        for model in get_args(get_args(RecordBody)[0])
        for name in model.model_fields
        if name != "kind"
    }
    assert sorted(fields - set(FIELD_NAMES)) == []
    assert sorted(set(KIND_CATEGORY) - set(KIND_NAMES)) == []


def test_a_records_fields_and_codes_read_as_words() -> None:
    body = {
        "kind": "referral",
        "referring_party": "af",
        "received_on": "2025-03-01",
        "reason": "long_term_sick_leave",
        "planned_interventions": ["sius", "praktik"],
        "ongoing_treatment_contact": True,
        "end": None,
    }
    sv = record_details({"lang": "sv"}, body)  # type: ignore[call-arg]
    assert sv == (
        "orsak: långvarig sjukskrivning, remitterad av: af, mottagen: 2025-03-01, "
        "planerade insatser: SIUS, praktik, pågående behandlingskontakt: ja"
    )
    en = record_details({"lang": "en"}, body)  # type: ignore[call-arg]
    assert en.startswith("reason: long-term sick leave, referred by: af, received on: 2025-03")


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("", []),
        ("sv-SE,sv;q=0.9,en-US;q=0.8,en;q=0.7", ["sv", "sv", "en", "en"]),
        ("en-GB, en;q=0.8", ["en", "en"]),
        ("de-DE;q=0.9, en;q=0.5, fr;q=1", ["fr", "de", "en"]),
        ("en;q=0, sv", ["sv"]),
        ("en;q=abc, sv;q=0.1", ["sv"]),
    ],
)
def test_accept_language_is_read_most_wanted_first(header: str, language: list[str]) -> None:
    assert accepted_languages(header) == language


@pytest.fixture
def client(hub: Hub) -> Iterator[TestClient]:
    with web_client(hub, language="") as client:
        yield client


def test_pages_are_in_swedish_unless_the_browser_asks_for_english(client: TestClient) -> None:
    swedish = client.get("/login")
    assert '<html lang="sv">' in swedish.text
    assert "<h1>Logga in</h1>" in swedish.text and "Din inloggningsnyckel" in swedish.text
    asked = client.get("/login", headers={"accept-language": "sv-SE,sv;q=0.9,en;q=0.8"})
    assert "<h1>Logga in</h1>" in asked.text
    english = client.get("/login", headers={"accept-language": "en-US,en;q=0.9,sv;q=0.5"})
    assert '<html lang="en">' in english.text and "<h1>Sign in</h1>" in english.text
    other = client.get("/login", headers={"accept-language": "de-DE,de;q=0.9"})
    assert "<h1>Logga in</h1>" in other.text


def test_the_default_language_is_a_setting(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVI_WEB__LANGUAGE", "en")
    get_settings.cache_clear()
    english_hub = Hub(settings=get_settings(), db=hub.db)
    with web_client(english_hub, language="") as client:
        assert "<h1>Sign in</h1>" in client.get("/login").text
        assert "<h1>Logga in</h1>" in client.get("/login", headers={"accept-language": "sv"}).text


def test_a_bad_default_language_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    monkeypatch.setenv("EVI_WEB__LANGUAGE", "de")
    result = cli("config", "show")
    assert result.code == 2 and "web.language" in result.err


def test_a_signed_in_caseworker_gets_swedish_pages_and_messages(
    hub: Hub, client: TestClient
) -> None:
    refused = client.post("/login", data={"token": "wrong"})
    assert "Inloggningsnyckeln gäller inte" in refused.text
    assert "Logga in för att se sidan." in client.get("/participants").text
    client.post("/login", data={"token": token_for(hub, "anna.af", Role.CASEWORKER, "af")})
    page = client.get("/participants").text
    assert "<h1>Personöversikt</h1>" in page and "Logga ut" in page
    assert "anna.af · af · handläggare" in page
    typo = client.post("/participants", data={"pnr": "12345"})
    assert typo.status_code == 422 and "Kontrollera det du fyllde i. (pnr:" in typo.text
    assert "12345" not in typo.text
    forbidden = client.get("/admin")
    assert forbidden.status_code == 403
    assert (
        "Fel 403" in forbidden.text
        and "Din roll har inte behörighet till den här sidan." in forbidden.text
    )
    client.post("/logout")
    ended = client.get("/participants")
    assert ended.status_code == 401 and "Logga in för att se sidan." in ended.text


def test_the_statistics_page_names_its_rows_in_swedish(hub: Hub, client: TestClient) -> None:
    client.post("/login", data={"token": token_for(hub, "stina", Role.STEERING_GROUP)})
    page = client.get("/stats", params={"from": "2025-01-01", "to": "2025-12-31"}).text
    assert "2025-01-01 till 2025-12-31" in page
    for swedish in ("Deltagare", "nya (ärende öppnat)", "kvinnor", "män", "totalt"):
        assert swedish in page
    sv = translations("sv")
    assert sv.gettext(LEFT_OUT[0]) in page
    assert "<5: mellan 1 och 4 personer" in page.replace("&lt;", "<")
    assert not re.search(r"\bwomen\b|\bParticipants\b", page)
