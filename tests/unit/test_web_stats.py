"""The steering group's follow-up statistics over the web.

The API and the page run the same use case as `evi stats`: the same figures, the gate
asked about each person for ``evaluation`` and every decision logged, with the web user
as actor and ``steering_group`` as role. A bad period is a 422 naming the field.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from stats_support import Caseload, small_caseload
from test_consent_support import ledger
from web_support import bearer, token_for, web_client

from hub.context import Hub
from hub.stats.period import swedish_day
from hub.stats.report import CHANGES
from hub.web import stats_text
from hub.web.i18n import translations
from hub.web.users import Role

PERIOD = {"from": "2025-04-01", "to": "2025-06-30"}
VARIES = ("decided_at", "correlation_id")  # when the gate was asked, and under which id


@pytest.fixture
def caseload(hub: Hub) -> Caseload:
    return small_caseload(hub)


@pytest.fixture
def client(caseload: Caseload) -> Iterator[TestClient]:
    with web_client(caseload.hub) as client:
        yield client


@pytest.fixture
def steering(hub: Hub) -> dict[str, str]:
    return bearer(token_for(hub, "sara.sg", Role.STEERING_GROUP, party="team"))


def decisions(hub: Hub) -> list[dict[str, Any]]:
    return [e for e in ledger(hub.db) if e["action"] == "decision"]


def row(html: str, label: str) -> list[str]:
    """The women / men / total cells of the page's row ``label``, as shown."""
    found = re.search(rf'<th scope="row">{re.escape(label)}</th>((?:<td>[^<]*</td>)+)', html)
    assert found, f"no row {label!r} in the page"
    return [c.replace("&lt;", "<") for c in re.findall(r"<td>([^<]*)</td>", found.group(1))]


def test_the_api_and_the_page_need_a_steering_group_user(hub: Hub, client: TestClient) -> None:
    assert client.get("/api/stats", params=PERIOD).status_code == 401
    assert client.get("/stats", params=PERIOD).status_code == 401
    caseworker = bearer(token_for(hub, "anna.af", Role.CASEWORKER, party="af"))
    officer = bearer(token_for(hub, "dso.kommun", Role.PRIVACY_OFFICER, party="kommun"))
    for headers in (caseworker, officer):
        api = client.get("/api/stats", params=PERIOD, headers=headers)
        assert api.status_code == 403 and "steering_group" in api.json()["detail"]
        assert client.get("/stats", params=PERIOD, headers=headers).status_code == 403
    assert decisions(hub) == []


def test_the_api_answers_what_evi_stats_json_prints(
    client: TestClient, steering: dict[str, str], cli: Any
) -> None:
    response = client.get("/api/stats", params=PERIOD, headers=steering)
    assert response.status_code == 200, response.text
    web = response.json()
    result = cli("stats", "--from", PERIOD["from"], "--to", PERIOD["to"], "--json")
    assert result.code == 0, result.err
    from_cli = json.loads(result.out)
    assert web.keys() == from_cli.keys()
    assert {k: v for k, v in web.items() if k not in VARIES} == {
        k: v for k, v in from_cli.items() if k not in VARIES
    }
    assert web["new"]["women"] == {"count": 6, "suppressed": False, "rule": None}
    assert web["active"]["men"] == {"count": None, "suppressed": True, "rule": "small_cell"}


def test_the_gate_decisions_are_logged_with_the_web_user_as_actor(
    hub: Hub, client: TestClient, steering: dict[str, str]
) -> None:
    api = client.get("/api/stats", params=PERIOD, headers=steering).json()
    page = client.get("/stats", params=PERIOD, headers=steering)
    assert page.status_code == 200
    logged = decisions(hub)
    by_api = [e for e in logged if e["correlation_id"] == api["correlation_id"]]
    assert len(by_api) == 6 + 3 * 2  # women: kommun referral; men: kommun referral, closure
    assert len(logged) == 2 * len(by_api)  # the page asked the gate again, under its own id
    assert {(e["actor"], e["role"], e["purpose"], e["recipient"]) for e in logged} == {
        ("sara.sg", "steering_group", "evaluation", "team")
    }
    assert len({e["correlation_id"] for e in logged}) == 2


def test_the_page_shows_the_report_as_tables_of_women_men_and_total(
    client: TestClient, steering: dict[str, str]
) -> None:
    page = client.get("/stats", params=PERIOD, headers=steering)
    assert page.status_code == 200, page.text
    html = page.text
    assert row(html, "new (case opened)") == ["6", "0", "6"]
    # 3 men: suppressed, and the women too, or 9 - 6 would give the men away
    assert row(html, "active (case open)") == ["x", "<5", "9"]
    assert row(html, "closed (case closed)") == ["0", "<5", "<5"]
    assert row(html, "work with subsidy") == ["0", "<5", "<5"]
    assert row(html, "goal reached") == ["0", "<5", "<5"]
    assert row(html, "entirely (in no figure)") == ["0"]
    assert "studies" not in html  # breakdown rows with no one in them are left out
    assert "&lt;5: between 1 and 4 people" in html
    assert "x: not shown either" in html
    assert "consent covers the purpose <em>evaluation</em>" in html
    assert 'value="2025-04-01"' in html and 'value="2025-06-30"' in html


def test_the_page_without_a_period_shows_the_form_and_asks_no_one(
    hub: Hub, client: TestClient, steering: dict[str, str]
) -> None:
    page = client.get("/stats", headers=steering)
    assert page.status_code == 200
    assert '<input name="from" type="date" value=""' in page.text
    assert "<table" not in page.text
    assert decisions(hub) == []


def test_steering_group_users_see_the_link_and_others_do_not(
    hub: Hub, client: TestClient, steering: dict[str, str]
) -> None:
    assert 'href="/stats"' in client.get("/", headers=steering).text
    caseworker = bearer(token_for(hub, "anna.af", Role.CASEWORKER, party="af"))
    assert 'href="/stats"' not in client.get("/", headers=caseworker).text


BAD_PERIODS = [
    pytest.param({"to": "2025-06-30"}, "from: missing", id="from missing"),
    pytest.param({"from": "2025-04-01", "to": ""}, "to: missing", id="to empty"),
    pytest.param({"from": "2025-13-01", "to": "2025-06-30"}, "from: not a date", id="month 13"),
    pytest.param({"from": "2025-04-01", "to": "30/06/2025"}, "to: not a date", id="not ISO"),
    pytest.param({"from": "189001019802", "to": "2025-06-30"}, "from: not a date", id="pnr-like"),
    pytest.param(
        {"from": "2025-06-30", "to": "2025-04-01"},
        "to 2025-04-01 is before from 2025-06-30; give a to on or after from",
        id="ends before it starts",
    ),
    pytest.param(
        {"from": "2999-01-01", "to": "2999-12-31"},
        "from 2999-01-01 is after today (",
        id="starts after today",
    ),
]


@pytest.mark.parametrize(("period", "message"), BAD_PERIODS)
def test_a_bad_period_is_422_naming_the_field_and_asks_no_one(
    hub: Hub, client: TestClient, steering: dict[str, str], period: dict[str, str], message: str
) -> None:
    api = client.get("/api/stats", params=period, headers=steering)
    assert api.status_code == 422
    assert api.json()["detail"].startswith(message)
    page = client.get("/stats", params=period, headers=steering)
    assert page.status_code == 422
    start = page.text.index('<form class="filters"')
    form = page.text[start : page.text.index("</form>", start)]
    assert f'role="alert">Check what you entered. ({message}' in form
    assert "Traceback" not in page.text and "<table" not in page.text
    for text in period.values():
        if text and not _is_day(text):  # what is not a date is neither echoed nor refilled
            assert text not in api.text and text not in page.text
        elif text:  # a good date stays in the form
            assert f'value="{text}"' in form
    assert decisions(hub) == []


def _is_day(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def test_the_csv_download_is_what_evi_stats_csv_prints(
    client: TestClient, steering: dict[str, str], cli: Any
) -> None:
    response = client.get("/stats.csv", params=PERIOD, headers=steering)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert (
        'filename="evi-uppfoljning-2025-04-01-2025-06-30.csv"'
        in (response.headers["content-disposition"])
    )
    by_cli = cli("stats", "--from", PERIOD["from"], "--to", PERIOD["to"], "--csv").out
    # the same file but for the last line, which names each report's own correlation id
    assert response.text.splitlines()[:-1] == by_cli.splitlines()[:-1]
    bad = client.get("/stats.csv", params={"from": "2025-13-01", "to": "2025-06-30"},
                     headers=steering)  # fmt: skip
    assert bad.status_code == 422  # a program with its token is answered as on the API
    assert bad.json()["detail"].startswith("from: not a date")


def test_the_page_links_the_very_report_it_shows_as_csv_without_asking_again(
    hub: Hub, client: TestClient, steering: dict[str, str], cli: Any
) -> None:
    page = client.get("/stats", params=PERIOD, headers=steering).text
    assert len(decisions(hub)) == 6 + 3 * 2  # the page's; the file needs no request of its own
    link = re.search(
        r'<a href="data:text/csv;charset=utf-8,([^"]*)" download="([^"]*)">Download as CSV', page
    )
    assert link, "no CSV link holding the report"
    assert link.group(2) == "evi-uppfoljning-2025-04-01-2025-06-30.csv"
    shown = unquote(html.unescape(link.group(1)))
    by_cli = cli("stats", "--from", PERIOD["from"], "--to", PERIOD["to"], "--csv").out
    rows, cli_rows = shown.splitlines(), by_cli.splitlines()
    # the same file but for when it was decided and under which correlation id: the page's
    assert [r for r in rows if not r.startswith(("decided,", "transfer log,"))] == [
        r for r in cli_rows if not r.startswith(("decided,", "transfer log,"))
    ]
    correlation_id = re.search(r"correlation id <code>([^<]+)</code>", page)
    assert correlation_id and rows[-1].endswith(f"correlation id {correlation_id.group(1)},,,")
    officer = bearer(token_for(hub, "dso.kommun", Role.PRIVACY_OFFICER, party="kommun"))
    assert client.get("/stats.csv", params=PERIOD, headers=officer).status_code == 403


def test_the_swedish_page_offers_its_tables_for_a_swedish_spreadsheet(
    hub: Hub, client: TestClient, steering: dict[str, str]
) -> None:
    # a Swedish Excel splits columns at ';' and reads UTF-8 only after a byte order mark;
    # the English comma file of /stats.csv opened there is one column of mojibake
    page = client.get("/stats", params=PERIOD, headers={**steering, "Accept-Language": "sv"})
    link = re.search(
        r'<a href="data:text/csv;charset=utf-8,([^"]*)" download="[^"]*">Ladda ner för '
        r"kalkylprogram</a>",
        page.text,
    )
    assert link, "no spreadsheet link on the Swedish page"
    sheet = unquote(html.unescape(link.group(1)))
    assert sheet.startswith("\ufeffUppföljningsstatistik;")
    rows = [row.split(";") for row in sheet.lstrip("\ufeff").split("\r\n")]
    assert ["Deltagare", "kvinnor", "män", "totalt"] in rows
    cells = {html.unescape(c) for c in re.findall(r"<td>([^<]*)</td>", page.text)}
    figures = [cell for row in rows if len(row) == 4 for cell in row[1:] if cell]
    assert set(figures) - {"kvinnor", "män", "totalt"} <= cells  # the page's figures
    assert len(decisions(hub)) == 6 + 3 * 2  # made with the page: the gate was asked once


def test_the_page_says_when_the_figures_were_decided_and_that_they_can_change(
    hub: Hub, caseload: Caseload, steering: dict[str, str]
) -> None:
    page = web_client(hub).get("/stats", params=PERIOD, headers=steering).text
    decided = re.search(
        r"Decided (\d{4}-\d\d-\d\d \d\d:\d\d CES?T) under the consents in force and the records "
        r"stored then\.",
        page,
    )
    assert decided, "the page does not say when the figures were decided"
    assert html.unescape(stats_text.CHANGES) == CHANGES  # the page's English is the CLI's
    assert CHANGES in html.unescape(page)
    swedish = web_client(hub, "sv").get("/stats", params=PERIOD, headers=steering).text
    sv = translations("sv")
    assert sv.gettext(stats_text.CHANGES) != stats_text.CHANGES
    assert sv.gettext(stats_text.CHANGES) in html.unescape(swedish)
    assert sv.gettext(stats_text.DECIDED).split("%(at)s")[0] in html.unescape(swedish)


def test_a_period_ending_after_today_is_shown_up_to_today_saying_so(
    client: TestClient, steering: dict[str, str]
) -> None:
    today = swedish_day(datetime.now(UTC))
    page = client.get("/stats", params={"from": "2025-04-01", "to": "2999-12-31"}, headers=steering)
    assert page.status_code == 200
    assert (
        f"The period asked for ends 2999-12-31, after the day the report was made: it is "
        f"counted up to {today}." in page.text
    )
    api = client.get(
        "/api/stats", params={"from": "2025-04-01", "to": "2999-12-31"}, headers=steering
    )
    assert (api.json()["period_end"], api.json()["period_end_requested"]) == (
        today.isoformat(),
        "2999-12-31",
    )
