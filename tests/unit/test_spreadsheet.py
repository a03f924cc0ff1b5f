"""CSV output never hands a spreadsheet a formula: text that starts like one is marked as
text with a leading apostrophe, everything else is left exactly as it was."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from ledger_support import decisions

from hub.context import Hub
from hub.spreadsheet import cell_text
from tests.conftest import DATA

PNR = (DATA / "skatteverket_testpersonnummer.csv").read_text().split()[1]
FORMULA = '=HYPERLINK("http://evil.example","click")'


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("=1+1", "'=1+1"),
        ("+46 8 123", "'+46 8 123"),
        ("-cmd", "'-cmd"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("cli:anna", "cli:anna"),
        ("2026-12-05T02:57:14Z", "2026-12-05T02:57:14Z"),
        ("<5", "<5"),
        (17, "17"),
        (None, ""),
    ],
)
def test_cell_text_marks_formulas_and_leaves_the_rest(value: Any, shown: str) -> None:
    assert cell_text(value) == shown


def test_a_log_search_as_csv_shows_a_typed_formula_as_text(hub: Hub, cli: Any) -> None:
    decisions(hub, PNR, 1, actor=FORMULA)
    result = cli("log", "search", "--format", "csv")
    assert result.code == 0, result.err
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert rows[0]["actor"] == "'" + FORMULA
    assert rows[0]["time"][:4].isdigit()  # ordinary cells are untouched
