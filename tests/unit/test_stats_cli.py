"""`evi stats`: tables for people, JSON for tools, and bad dates refused with what to fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from stats_support import Caseload, small_caseload
from test_consent_support import ledger

from hub.context import Hub
from hub.ledger.service import cli_actor

PERIOD = ("--from", "2025-04-01", "--to", "2025-06-30")


@pytest.fixture
def caseload(hub: Hub) -> Caseload:
    return small_caseload(hub)


def _row(out: str, label: str) -> list[str]:
    line = next(line for line in out.splitlines() if line.strip().startswith(label))
    return line.split()[-3:]


def test_stats_prints_a_table_per_measure_women_men_total(cli: Any, caseload: Caseload) -> None:
    result = cli("stats", *PERIOD)
    assert result.code == 0, result.err
    assert "Follow-up 2025-04-01 to 2025-06-30" in result.out
    assert _row(result.out, "new (case opened)") == ["6", "0", "6"]
    # 3 men: suppressed, and the women too, or 9 - 6 would give the men away
    assert _row(result.out, "active (case open)") == ["x", "<5", "9"]
    assert _row(result.out, "closed (case closed)") == ["0", "<5", "<5"]
    assert _row(result.out, "work_with_subsidy") == ["0", "<5", "<5"]
    assert "<5: between 1 and 4 people" in result.out
    decided = result.out.splitlines()[1]
    assert decided.startswith("Decided ") and decided.endswith(
        "under the consents in force and the records stored then."
    )
    assert "the same report made again may differ." in " ".join(result.out.split())


def test_stats_json_is_the_report_with_suppressed_cells_as_null(
    cli: Any, caseload: Caseload
) -> None:
    result = cli("stats", *PERIOD, "--json", "--actor", "steering:anna")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert (data["period_start"], data["period_end"]) == ("2025-04-01", "2025-06-30")
    assert data["new"]["women"] == {"count": 6, "suppressed": False, "rule": None}
    assert data["active"]["men"] == {"count": None, "suppressed": True, "rule": "small_cell"}
    assert data["closed_by_outcome"]["work_with_subsidy"]["men"]["count"] is None
    assert data["left_out"]["count"] == 0
    asked = [e for e in ledger(caseload.hub.db) if e["correlation_id"] == data["correlation_id"]]
    assert len(asked) == 6 + 3 * 2  # women: kommun referral; men: kommun referral, closure
    assert {(e["actor"], e["role"], e["purpose"]) for e in asked} == {
        (f"steering:anna via {cli_actor()}", "steering_group", "evaluation")
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--from", "2025-13-01", "--to", "2025-06-30"),
            "error: --from: not a date; write a date as YYYY-MM-DD",
        ),
        (
            ("--from", "2025-04-01", "--to", "30/06/2025"),
            "error: --to: not a date; write a date as YYYY-MM-DD",
        ),
        (
            ("--from", "20250401", "--to", "2025-06-30"),
            "error: --from: not a date; write a date as YYYY-MM-DD",
        ),
        (
            ("--from", "2025-06-30", "--to", "2025-04-01"),
            "error: --to 2025-04-01 is before --from 2025-06-30; give a --to on or after --from",
        ),
        (
            ("--from", "2999-01-01", "--to", "2999-12-31"),
            "error: --from 2999-01-01 is after today (",
        ),
    ],
    ids=["impossible month", "not ISO", "no dashes", "ends before it starts", "in the future"],
)
def test_bad_dates_exit_2_saying_what_to_fix(
    cli: Any, evi_home: Path, args: tuple[str, ...], message: str
) -> None:
    result = cli("stats", *args)
    assert result.code == 2
    assert result.err.startswith(message)
    assert result.out == ""


def test_stats_csv_has_a_row_per_figure_with_the_markers_kept(cli: Any, caseload: Caseload) -> None:
    import csv

    result = cli("stats", *PERIOD, "--csv")
    assert result.code == 0, result.err
    rows = list(csv.reader(result.out.splitlines()))
    assert rows[0] == ["period", "2025-04-01 to 2025-06-30", "", "", ""]
    assert ["table", "row", "women", "men", "total"] in rows
    cells = {(r[0], r[1]): r[2:] for r in rows}
    assert cells[("Participants", "new (case opened)")] == ["6", "0", "6"]
    assert cells[("Participants", "active (case open)")] == ["x", "<5", "9"]
    assert cells[("Closed, by outcome", "work_with_subsidy")] == ["0", "<5", "<5"]
    assert cells[("Left out: gate did not permit", "entirely (in no figure)")][2] == "0"
    assert any(r[0] == "legend" and r[1].startswith("<5: between 1 and 4") for r in rows)
    assert [r[0] for r in rows[:4]] == ["period", "purpose", "decided", "table"]
    assert rows[2][1].startswith("Decided ")
    assert any(r[0] == "changes" and "earlier periods too" in r[1] for r in rows)
    both = cli("stats", *PERIOD, "--csv", "--json")
    assert both.code == 2 and "--json or --csv" in both.err
