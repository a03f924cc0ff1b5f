"""The transfer log's content has a floor: `evi log purge --before DATE` refuses a DATE
within ``[ledger] minimum_retention_days`` (365 unless configured) of today, confirmed or
not, naming the setting and the latest day allowed, and purges nothing. Before, any day
not in the future was taken: yesterday's entries could lose their content, and with them
what the log is kept to show (an auditor's finding). The minimum is lowered only in the
configuration, never by an option."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ledger_support import decisions

from hub.clock import SWEDEN, parse_cut_off
from hub.context import Hub
from hub.errors import InputError
from hub.ledger import service
from tests.conftest import DATA

PNR = (DATA / "skatteverket_testpersonnummer.csv").read_text().split()[1]
TICK = timedelta(microseconds=1)


def _swedish_day(days_ago: int) -> str:
    """The date in Sweden ``days_ago`` days before now, as `--before` takes it."""
    return (datetime.now(UTC) - timedelta(days=days_ago)).astimezone(SWEDEN).date().isoformat()


def _export(cli: Any) -> list[dict[str, Any]]:
    result = cli("log", "export", "--format", "jsonl")
    assert result.code == 0, result.err
    return [json.loads(line) for line in result.out.splitlines()]


def _purged(cli: Any) -> list[bool]:
    """Whether each decision entry was purged, in order (the export's own are no decision)."""
    return [line["purged"] for line in _export(cli) if line["action"] == "decision"]


@pytest.fixture
def aged(hub: Hub) -> Hub:
    """Decisions recorded 400, 40 and 10 days ago."""
    now = datetime.now(UTC)
    for days in (400, 40, 10):
        decisions(hub, PNR, 1, time=now - timedelta(days=days))
    return hub


@pytest.mark.parametrize("confirm", [("--yes",), ()], ids=["confirmed", "dry-run"])
def test_a_purge_within_the_minimum_is_refused_and_purges_nothing(
    aged: Hub, cli: Any, confirm: tuple[str, ...]
) -> None:
    before = _swedish_day(5)  # the old code purged the entries of 400, 40 and 10 days ago
    result = cli("log", "purge", "--before", before, *confirm)
    assert result.code == 2, result.err
    [line] = result.err.splitlines()
    assert line.startswith(f"error: --before {before} is within the transfer log's minimum")
    assert "at least 365 days ([ledger] minimum_retention_days)" in line
    latest = re.search(r"give --before (\d{4}-\d{2}-\d{2}) or earlier", line)
    assert latest, line
    a_year_ago = date.fromisoformat(_swedish_day(365))  # the day may turn meanwhile
    assert abs(date.fromisoformat(latest[1]) - a_year_ago) <= timedelta(days=1)
    assert "Nothing was purged" in line and "EVI_LEDGER__MINIMUM_RETENTION_DAYS" in line
    assert _purged(cli) == [False, False, False]
    assert not any(line["action"] == "ledger_purge" for line in _export(cli))
    verified = cli("log", "verify")
    assert verified.code == 0, verified.out + verified.err
    assert "purged" not in verified.out


def test_a_purge_beyond_the_minimum_goes_ahead(aged: Hub, cli: Any) -> None:
    done = cli("log", "purge", "--before", _swedish_day(380), "--yes")
    assert done.code == 0, done.err
    assert "purged 1 entries recorded before" in done.err
    assert _purged(cli) == [True, False, False]
    assert cli("log", "verify").code == 0


def test_the_minimum_lowered_in_evi_toml_is_honoured(
    aged: Hub, cli: Any, evi_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (evi_home / "evi.toml").write_text("[ledger]\nminimum_retention_days = 30\n")
    shown = cli("config", "show")
    assert shown.code == 0 and "minimum_retention_days = 30" in shown.out
    refused = cli("log", "purge", "--before", _swedish_day(20), "--yes")
    assert refused.code == 2 and "at least 30 days" in refused.err
    assert _purged(cli) == [False, False, False]
    done = cli("log", "purge", "--before", _swedish_day(35), "--yes")
    assert done.code == 0, done.err
    assert _purged(cli) == [True, True, False]
    monkeypatch.setenv("EVI_LEDGER__MINIMUM_RETENTION_DAYS", "0")  # the environment wins
    today = cli("log", "purge", "--before", _swedish_day(0), "--yes")
    assert today.code == 0, today.err
    assert _purged(cli) == [True, True, True]
    assert cli("log", "verify").code == 0


def test_config_show_gives_the_minimum_and_no_option_lowers_it(hub: Hub, cli: Any) -> None:
    shown = cli("config", "show", "--json")
    assert json.loads(shown.out)["ledger"]["minimum_retention_days"] == 365
    flag = cli("log", "purge", "--before", _swedish_day(5), "--minimum-retention-days", "0")
    assert flag.code == 2 and "No such option" in flag.err


@pytest.mark.parametrize("days", ["-1", "many"])
def test_a_minimum_that_is_no_number_of_days_is_a_configuration_error(
    hub: Hub, cli: Any, monkeypatch: pytest.MonkeyPatch, days: str
) -> None:
    monkeypatch.setenv("EVI_LEDGER__MINIMUM_RETENTION_DAYS", days)
    result = cli("log", "purge", "--before", "2001-01-01", "--yes")
    assert result.code == 2
    assert "error: invalid configuration: setting 'ledger.minimum_retention_days': " in result.err
    assert "unknown" not in result.err


# -- the exact line, on a clock the test sets ---------------------------------------------


NOW = datetime(2027, 3, 15, 12, 0, tzinfo=UTC)  # 13:00 on 15 March in Sweden
FLOOR = parse_cut_off("2026-03-15")  # 365 days before: 23:00 UTC on 14 March 2026


def test_the_latest_cut_off_is_the_start_of_the_swedish_day_the_minimum_ago(hub: Hub) -> None:
    decisions(hub, PNR, 1, time=FLOOR - TICK)  # 23:59:59.999999 on 14 March in Sweden
    decisions(hub, PNR, 1, time=FLOOR)  # 00:00 on 15 March

    def purge(before: datetime) -> int:
        return service.purge(hub, before, "cli:test", confirmed=True, clock=lambda: NOW).purged

    for inside in (FLOOR + TICK, parse_cut_off("2026-03-16"), NOW - timedelta(days=1)):
        with pytest.raises(InputError, match="give --before 2026-03-15 or earlier") as refused:
            purge(inside)
        assert "at least 365 days" in refused.value.message
    assert purge(FLOOR) == 1  # at the floor: the entry before it goes, the one at it stays
    assert purge(parse_cut_off("2026-03-01")) == 0  # beyond it: nothing more to purge
    with hub.db.session() as session:
        from hub.ledger.records import LedgerQuery, find_entries

        kept = [r.purged for r in find_entries(session, LedgerQuery()) if r.action == "decision"]
    assert kept == [True, False]


def test_a_date_in_the_future_is_still_refused_as_such(hub: Hub) -> None:
    with pytest.raises(InputError, match="--before is in the future"):
        service.purge(hub, NOW + TICK, "cli:test", confirmed=True, clock=lambda: NOW)
