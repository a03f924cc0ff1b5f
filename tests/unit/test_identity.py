"""Identity numbers: every official Skatteverket test number parses, nothing else does."""

from __future__ import annotations

import csv
import re
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.model.identity import (
    InvalidIdentityError,
    PersonalIdentity,
    luhn_check_digit,
    parse_identity,
)

DATA = Path(__file__).parents[1] / "data"
TODAY = date(2026, 11, 23)


def _numbers(name: str, column: str) -> list[str]:
    with open(DATA / name, newline="") as fh:
        return [row[column] for row in csv.DictReader(fh)]


PERSONNUMMER = _numbers("skatteverket_testpersonnummer.csv", "personnummer")
SAMORDNINGSNUMMER = _numbers("skatteverket_testsamordningsnummer.csv", "samordningsnummer")


def test_the_official_lists_are_complete() -> None:
    assert len(PERSONNUMMER) == 21_728
    assert len(SAMORDNINGSNUMMER) == 2_240


@pytest.mark.parametrize("numbers", [PERSONNUMMER, SAMORDNINGSNUMMER], ids=["pnr", "samnr"])
def test_every_official_number_parses_in_12_and_10_digit_forms(numbers: list[str]) -> None:
    for number in numbers:
        identity = parse_identity(number, today=TODAY)
        assert identity.number == number
        assert parse_identity(identity.formatted(), today=TODAY) == identity
        ten = identity.ten_digit(TODAY)
        assert parse_identity(ten, today=TODAY) == identity, ten
        if ten[6] == "-":
            assert parse_identity(ten.replace("-", ""), today=TODAY) == identity


@pytest.mark.parametrize("numbers", [PERSONNUMMER, SAMORDNINGSNUMMER], ids=["pnr", "samnr"])
def test_every_changed_check_digit_is_rejected_naming_the_check_digit(
    numbers: list[str],
) -> None:
    for number in numbers:
        for digit in "0123456789":
            if digit == number[-1]:
                continue
            with pytest.raises(InvalidIdentityError, match="check digit"):
                parse_identity(number[:-1] + digit)


def test_samordningsnummer_are_recognised_and_may_lack_a_birth_date() -> None:
    assert all(parse_identity(n).is_coordination_number for n in SAMORDNINGSNUMMER)
    assert not any(parse_identity(n).is_coordination_number for n in PERSONNUMMER[:500])
    unknown = [n for n in SAMORDNINGSNUMMER if n[4:6] == "00" or n[6:8] == "60"]
    assert unknown, "Skatteverket's list has numbers with unknown birth dates"
    for number in unknown:
        identity = parse_identity(number)
        assert identity.birth_date is None
        assert identity.birth_year == int(number[:4])


def test_birth_date_and_gender_come_from_the_number() -> None:
    identity = parse_identity("189001019802")
    assert identity.birth_date == date(1890, 1, 1)
    assert identity.gender == "female"  # second-to-last digit 0 is even
    coordination = parse_identity(SAMORDNINGSNUMMER[0])
    day = int(SAMORDNINGSNUMMER[0][6:8]) - 60
    if coordination.birth_date is not None:
        assert coordination.birth_date.day == day
    assert parse_identity(PERSONNUMMER[1]).gender == (
        "male" if int(PERSONNUMMER[1][10]) % 2 else "female"
    )


def test_plus_separator_means_a_hundred_years_or_older() -> None:
    identity = parse_identity("900101+9802", today=TODAY)
    assert identity.number == "189001019802"
    assert identity.ten_digit(TODAY) == "900101+9802"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "YYYYMMDD-NNNC"),
        ("abc", "YYYYMMDD-NNNC"),
        ("1890010198", "impossible month 90"),
        ("18900101980", "10 or 12 digits"),
        ("18901301-9800", "impossible month 13"),
        ("18900100-9800", "impossible day 00"),
        ("19000229-0000", "impossible day 29"),
        ("18900101+9802", "10-digit form"),
    ],
)
def test_malformed_numbers_are_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(InvalidIdentityError, match=why):
        parse_identity(text)


@pytest.mark.parametrize(
    "digits",
    [
        "０１２３４５６７８９",  # full-width
        "٠١٢٣٤٥٦٧٨٩",  # Arabic-Indic
        "०१२३४५६७८९",  # Devanagari
    ],
)
def test_digits_of_other_scripts_are_refused_not_read_as_another_person(digits: str) -> None:
    # int() reads these digits, so the check digit would pass and the same person would
    # get a second, differently written number: a second pseudonym, a withdrawal that
    # misses one of them.
    number = PERSONNUMMER[10]
    for written in (
        "".join(digits[int(ch)] for ch in number),
        number[:-1] + digits[int(number[-1])],
        f"{number[:8]}-{number[8:]}".replace(number[0], digits[int(number[0])], 1),
    ):
        with pytest.raises(InvalidIdentityError, match="digits 0-9"):
            parse_identity(written)
    assert parse_identity(number).number == number


def test_errors_and_repr_never_repeat_the_number() -> None:
    number = PERSONNUMMER[10]
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    with pytest.raises(InvalidIdentityError) as err:
        parse_identity(wrong)
    assert number[:8] not in str(err.value)
    identity = parse_identity(number)
    assert number not in repr(identity) and number[:8] not in str(identity)


@given(st.from_regex(r"\A(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])[0-9]{3}\Z"))
def test_a_number_with_its_luhn_digit_always_parses(prefix: str) -> None:
    number = prefix + str(luhn_check_digit(prefix[2:]))
    assert parse_identity(number) == PersonalIdentity(number=number)


# -- the project uses only the official test numbers ----------------------------------------

ROOT = Path(__file__).parents[2]
SCANNED = ("hub", "plugins", "connectors", "mappings", "config", "tests", "docs", "bench")
# A 12-digit number (with or without its separator), or a 10-digit one written with its
# separator: what a person's number looks like in code, tests and documentation.
_NUMBER_LIKE = re.compile(r"(?<![\d.])(?:(?:18|19|20)\d{6}[-+]?\d{4}|\d{6}[-+]\d{4})(?!\d)")


def _tracked_text() -> list[Path]:
    files = [ROOT / "README.md"]
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*")):
            if (
                path.is_file()
                and DATA not in path.parents
                and "__pycache__" not in path.parts
                and path.suffix in {".py", ".md", ".toml", ".json", ".txt", ".html", ".po", ".csv"}
            ):
                files.append(path)
    return files


def test_every_identity_number_in_the_project_is_an_official_test_number() -> None:
    """People in sandboxes, fixtures and examples use Skatteverket's test numbers only: a
    number that parses as someone's, but is not on those lists, may be a real person's."""
    official = set(PERSONNUMMER) | set(SAMORDNINGSNUMMER)
    found = []
    for path in _tracked_text():
        for match in _NUMBER_LIKE.finditer(path.read_text(encoding="utf-8", errors="replace")):
            try:
                identity = parse_identity(match.group(), today=TODAY)
            except InvalidIdentityError:
                continue  # not a valid number at all (a bad check digit on purpose, say)
            if identity.number not in official:
                found.append(f"{path.relative_to(ROOT)}: {match.group()}")
    assert len(_tracked_text()) > 300  # the scan reads the project, not an empty folder
    assert found == [], "use a number from tests/data instead of " + ", ".join(found)
