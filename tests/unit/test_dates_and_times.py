"""Dates and times a person types, sees or is judged by: Swedish days and Swedish time.

The hub stores UTC; people in Sweden write and read Swedish local time and calendar days.
These tests place "now" and the instants at the edges that matter: the hour around
midnight (23:00-01:00 in Sweden is 22:00-00:00 UTC in winter, 21:00-23:00 in summer),
the changes to and from summer time (2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00),
a leap day and the ends of the calendar. No test depends on the real date.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from hub import clock
from hub.casework.held_text import _generated
from hub.clock import cut_off_text, parse_cut_off
from hub.commands.consent import _aware
from hub.consent.errors import ConsentFileError
from hub.consent.fhir import consent_resource
from hub.consent.files import load_submission
from hub.consent.receipt import render_receipt, swedish_time
from hub.consent.views import BlockView, ConsentHistory, PersonConsents, VersionView
from hub.errors import InputError
from hub.model.identity import parse_identity
from hub.text.times import minute_text as swedish_minute

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "consent-paper.json"
PNR = "199001012385"  # Skatteverket's test number


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# -- consent files: a time is a time, never a number of seconds ----------------------------


def _consent_file(tmp_path: Path, **fields: object) -> Path:
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data.pop("evidence", None)
    data["evidence"] = {
        "kind": "paper",
        "document_sha256": "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea",
        "witnessed_by": "handlaggare-17",
    }
    data.update(fields)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("written", ["20250101", "1735689600", 1735689600, "20250101.5"])
def test_a_consent_time_of_digits_alone_is_refused_not_read_as_seconds_since_1970(
    tmp_path: Path, written: object
) -> None:
    # "20250101" (a date as Försäkringskassan writes it) became 1970-08-23T09:01:41Z, and
    # a consent valid from then was stored without a word.
    with pytest.raises(ConsentFileError) as refused:
        load_submission(_consent_file(tmp_path, valid_from=written))
    assert any(
        line.startswith("valid_from = ") and "needs a date and time with offset" in line
        for line in refused.value.problems
    ), refused.value.problems


@pytest.mark.parametrize("field", ["valid_from", "valid_until", "informed_at"])
def test_a_consent_time_beyond_the_calendar_in_utc_is_refused_with_a_message(
    tmp_path: Path, field: str
) -> None:
    # 0001-01-01T00:30+01:00 is year 0 in UTC, 9999-12-31T23:30-01:00 year 10000: an
    # internal error (OverflowError) before.
    for written in ("0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00"):
        with pytest.raises(ConsentFileError) as refused:
            load_submission(_consent_file(tmp_path, **{field: written}))
        assert any(
            line.startswith(f"{field} = ") and "out of range once its offset is applied" in line
            for line in refused.value.problems
        ), refused.value.problems


def test_a_consent_time_with_an_offset_is_that_instant_across_the_changes_of_clock(
    tmp_path: Path,
) -> None:
    submission = load_submission(
        _consent_file(
            tmp_path,
            valid_from="2026-03-29T03:00:00+02:00",  # the first minute of summer time
            valid_until="2026-10-25T02:30:00+01:00",  # the second 02:30 of that night
            informed_at="2026-03-29T01:59:00+01:00",
        )
    )
    assert submission.valid_from == utc(2026, 3, 29, 1, 0)
    assert submission.valid_until == utc(2026, 10, 25, 1, 30)
    assert submission.informed_at == utc(2026, 3, 29, 0, 59)


def test_a_block_until_beyond_the_calendar_in_utc_is_refused_with_a_message() -> None:
    for written in ("9999-12-31T23:30:00-01:00", "0001-01-01T00:30:00+01:00"):
        with pytest.raises(InputError, match="out of range once its offset is applied"):
            _aware(written, "--until")
    assert _aware("2027-01-01T00:00:00+01:00", "--until") == utc(2026, 12, 31, 23, 0)


# -- the receipt and the register extract: Swedish time that cannot be read two ways -------


def _person(valid_from: datetime, valid_until: datetime, blocks: tuple[BlockView, ...] = ()):
    version = VersionView(
        consent_id="c-1",
        version=1,
        parties=("kommun", "team"),
        categories=("referral",),
        purposes=("coordination",),
        valid_from=valid_from,
        valid_until=valid_until,
        informed_by="h17",
        informed_at=valid_from,
        recorded_at=utc(2026, 12, 31, 23, 30),  # 00:30 on 1 January 2027 in Sweden
        recorded_by="cli:reception",
        evidence_kind="paper",
        evidence_detail="paper form",
    )
    consent = ConsentHistory(
        consent_id="c-1", versions=(version,), withdrawals=(), status="expired", current=version
    )
    return PersonConsents(
        pseudonym="p-" + "0" * 32,
        identity=parse_identity(PNR),
        protected_identity=False,
        consents=(consent,),
        blocks=blocks,
        as_of=utc(2027, 1, 1, 0, 0),
    )


def test_the_hour_the_clocks_show_twice_is_told_apart_in_the_receipt_and_the_extract() -> None:
    # 2026-10-25: 00:30 UTC is 02:30 summer time, 01:30 UTC is 02:30 winter time. A consent
    # of that hour read "från … kl. 02.30 till … kl. 02.30": no time at all.
    first, second = utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30)
    assert swedish_time(first) == "den 25 oktober 2026 kl. 02.30 (sommartid)"
    assert swedish_time(second) == "den 25 oktober 2026 kl. 02.30 (vintertid)"
    assert swedish_minute(first) == "2026-10-25 02:30 (sommartid)"
    assert swedish_minute(second) == "2026-10-25 02:30 (vintertid)"
    receipt = render_receipt(_person(first, second))
    assert (
        "från den 25 oktober 2026 kl. 02.30 (sommartid) till den 25 oktober 2026 kl. 02.30 "
        "(vintertid)" in receipt
    )
    assert _generated(second) == "2026-10-25 02:30 (svensk tid, vintertid)"
    assert _generated(utc(2026, 10, 25, 2, 0)) == "2026-10-25 03:00 (svensk tid)"
    # 2025 and 2027 too, and only in that hour
    assert swedish_minute(utc(2025, 10, 26, 0, 59)) == "2025-10-26 02:59 (sommartid)"
    assert swedish_minute(utc(2027, 10, 31, 1, 0)) == "2027-10-31 02:00 (vintertid)"
    assert swedish_minute(utc(2026, 10, 24, 23, 59)) == "2026-10-25 01:59"
    assert swedish_minute(utc(2026, 10, 25, 2, 0)) == "2026-10-25 03:00"


def test_the_change_to_summer_time_and_midnight_read_as_the_clocks_in_sweden_show() -> None:
    assert swedish_minute(utc(2026, 3, 29, 0, 59)) == "2026-03-29 01:59"
    assert swedish_minute(utc(2026, 3, 29, 1, 0)) == "2026-03-29 03:00"
    assert swedish_time(utc(2026, 3, 29, 1, 0)) == "den 29 mars 2026 kl. 03.00"
    assert swedish_minute(utc(2026, 12, 31, 23, 30)) == "2027-01-01 00:30"
    assert swedish_minute(utc(2026, 6, 30, 22, 0)) == "2026-07-01 00:00"
    assert swedish_time(utc(2028, 2, 28, 23, 0)) == "den 29 februari 2028 kl. 00.00"


def test_a_time_past_what_a_swedish_date_can_hold_is_given_in_utc_not_an_error() -> None:
    # A block "until 9999-12-31T23:59:59Z" (forever) is year 10000 in Sweden: the receipt
    # and the register extract of that person failed with an internal error.
    forever = utc(9999, 12, 31, 23, 59, 59)
    assert swedish_time(forever) == "den 31 december 9999 kl. 23.59 (UTC)"
    assert swedish_minute(forever) == "9999-12-31 23:59 (UTC)"
    block = BlockView("b-1", "af", None, utc(2026, 1, 1), forever, None)
    receipt = render_receipt(_person(utc(2026, 1, 1), forever, (block,)))
    assert receipt.count("till den 31 december 9999 kl. 23.59 (UTC)") == 2
    assert swedish_minute(utc(9999, 12, 31, 22, 59)) == "9999-12-31 23:59"


def test_the_fhir_consent_is_dated_the_day_in_sweden_it_was_recorded() -> None:
    person = _person(utc(2026, 1, 1), utc(2027, 1, 1))
    resource = consent_resource(person, person.consents[0])
    assert resource["date"] == "2027-01-01"  # recorded 2026-12-31T23:30Z, 00:30 in Sweden


# -- retention: a cut-off date is a day in Sweden ------------------------------------------


@pytest.mark.parametrize(
    ("written", "instant"),
    [
        ("2026-01-01", utc(2025, 12, 31, 23, 0)),
        ("2026-07-01", utc(2026, 6, 30, 22, 0)),
        ("2026-03-29", utc(2026, 3, 28, 23, 0)),  # the night summer time starts
        ("2026-03-30", utc(2026, 3, 29, 22, 0)),
        ("2026-10-25", utc(2026, 10, 24, 22, 0)),  # the night summer time ends
        ("2026-10-26", utc(2026, 10, 25, 23, 0)),
        ("2028-02-29", utc(2028, 2, 28, 23, 0)),
        ("9999-12-31", utc(9999, 12, 30, 23, 0)),
        ("2026-06-01T12:00", utc(2026, 6, 1, 10, 0)),  # Swedish time, as a date is
        ("2026-06-01T12:00:00Z", utc(2026, 6, 1, 12, 0)),
        ("2026-06-01T12:00:00+01:00", utc(2026, 6, 1, 11, 0)),
    ],
)
def test_consent_ended_before_a_date_means_before_that_day_began_in_sweden(
    written: str, instant: datetime
) -> None:
    # Before, a date was midnight UTC: a consent withdrawn at 00:30 on 1 January in Sweden
    # (23:30 UTC on 31 December) counted as ended before 2026-01-01, and its records were
    # removed with those of consents that had ended in the old year.
    assert parse_cut_off(written) == instant


def test_a_cut_off_is_named_by_its_swedish_day_in_the_log() -> None:
    assert cut_off_text(parse_cut_off("2026-01-01")) == "2026-01-01"
    assert cut_off_text(parse_cut_off("2026-07-01")) == "2026-07-01"
    assert cut_off_text(utc(2026, 6, 1, 12, 0)) == "2026-06-01T12:00:00Z"


@pytest.mark.parametrize("written", ["2027-02-29", "0001-01-01", "1 juni", "2026-13-01", ""])
def test_a_cut_off_that_is_no_day_in_sweden_is_refused(written: str) -> None:
    with pytest.raises(InputError, match="--consent-ended-before"):
        parse_cut_off(written)


def test_a_cut_off_of_today_in_sweden_is_not_in_the_future_when_utc_is_still_yesterday() -> None:
    # 23:30 UTC on 31 January is 00:30 on 1 February in Sweden: "before 2026-02-01" is
    # the past there, not "in the future" (midnight UTC, half an hour ahead).
    now = utc(2026, 1, 31, 23, 30)
    assert parse_cut_off("2026-02-01") <= now
    assert parse_cut_off("2026-02-02") > now


# -- a 10-digit number: the century by the year in Sweden ----------------------------------


def test_a_ten_digit_number_takes_its_century_from_the_year_in_sweden(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 23:30 UTC on New Year's Eve is already 2027 in Sweden: a person turning 100 in 2027
    # is written with '+' from then on, and must be found.
    monkeypatch.setattr(clock, "utc_now", lambda: utc(2026, 12, 31, 23, 30))
    # Skatteverket's test number 192701089167 in its 10-digit form of 2027; written in two
    # parts, since the project's scan for real numbers reads 10-digit forms as of 2026.
    written_in_2027 = "270108" + "+9167"
    assert parse_identity(written_in_2027).number == "192701089167"
    assert parse_identity("900101-2385").number == PNR
    assert parse_identity(PNR).ten_digit() == "900101-2385"
    assert parse_identity("192701089167").ten_digit() == written_in_2027
    assert date(2027, 1, 1) == clock.utc_now().astimezone(clock.SWEDEN).date()


def test_the_pages_and_the_log_extract_tell_the_repeated_hour_apart_and_reach_year_9999() -> None:
    """Before: every page's time (`swedish_time` in hub/web/templating.py) and the log
    extract read "2026-10-25 02:30" for both 00:30 and 01:30 UTC, and a page showing a
    block "until 9999-12-31T23:59Z" failed with an internal error (OverflowError)."""
    from hub.ledger.extract import _generated as log_generated
    from hub.web.templating import swedish_time as page_time

    first, second = utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30)
    assert page_time(first) == "2026-10-25 02:30 CEST"
    assert page_time(second) == "2026-10-25 02:30 CET"
    assert page_time(utc(2026, 10, 25, 2, 30)) == "2026-10-25 03:30"  # no note otherwise
    assert page_time("9999-12-31T23:59:00+00:00") == "9999-12-31 23:59 UTC"
    assert clock.swedish_minute(second, zone=True) == "2026-10-25 02:30 CET"
    assert log_generated(first) == "2026-10-25 02:30 (svensk tid, sommartid, som alla tider här)"
    assert (
        log_generated(utc(2026, 10, 25, 2, 0))
        == "2026-10-25 03:00 (svensk tid, som alla tider här)"
    )
