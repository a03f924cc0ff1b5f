"""Swedish personal identity numbers: personnummer and samordningsnummer.

Written by hand on purpose: python-stdnum rejects every samordningsnummer and the
``personnummer`` package rejects 170 of Skatteverket's official test samordningsnummer
(those with month 00 or day 60, i.e. an unknown birth date). This module accepts all
23,968 of Skatteverket's test numbers (see tests/data/) and nothing with a wrong check
digit.

Rules (Skatteverket SKV 704 and SKV 707):

* 12-digit form ``YYYYMMDDNNNC``, optionally ``YYYYMMDD-NNNC``;
  10-digit form ``YYMMDDNNNC`` with ``-`` (under 100 years old) or ``+`` (100 or older),
  the separator optional for ``-``.
* ``C`` is the Luhn check digit over the 9 digits ``YYMMDDNNN``.
* Samordningsnummer: day + 60. The month may be 00 and the day 60 when the birth date
  is not known.
* The second-to-last digit is odd for men, even for women.

Messages never repeat the number: they end up in logs and terminals.
"""

from __future__ import annotations

import calendar
import functools
import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

from hub import clock

Gender = Literal["female", "male"]

# re.ASCII: ``\d`` would also match other scripts' digits ("１", "٢"), which int() reads, so
# one person's number written in them would pass and become a second person.
_TWELVE = re.compile(r"^(\d{8})([-+]?)(\d{4})$", re.ASCII)
_TEN = re.compile(r"^(\d{6})([-+]?)(\d{4})$", re.ASCII)


class InvalidIdentityError(ValueError):
    """The text is not a valid personnummer or samordningsnummer; the message says why."""


def luhn_check_digit(nine_digits: str) -> int:
    """The Luhn check digit for ``YYMMDDNNN`` (weights 2,1,2,… from the left)."""
    total = 0
    for i, ch in enumerate(nine_digits):
        product = int(ch) * (2 if i % 2 == 0 else 1)
        total += product - 9 if product > 9 else product
    return (10 - total % 10) % 10


class PersonalIdentity(BaseModel):
    """A validated identity number in its normalised 12-digit form.

    ``repr()`` and ``str()`` are masked so an identity never leaks into a log by accident;
    use :attr:`number` where the number itself is needed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    number: str

    def __repr__(self) -> str:
        kind = "samordningsnummer" if self.is_coordination_number else "personnummer"
        return f"PersonalIdentity({kind}, ****)"

    __str__ = __repr__

    @property
    def is_coordination_number(self) -> bool:
        return int(self.number[6:8]) >= 60

    @property
    def gender(self) -> Gender:
        return "male" if int(self.number[10]) % 2 else "female"

    @property
    def birth_year(self) -> int:
        return int(self.number[:4])

    @property
    def birth_date(self) -> date | None:
        """The birth date, or ``None`` when a samordningsnummer does not record it."""
        month = int(self.number[4:6])
        day = int(self.number[6:8])
        if self.is_coordination_number:
            day -= 60
        if month == 0 or day == 0:
            return None
        return date(self.birth_year, month, day)

    def ten_digit(self, today: date | None = None) -> str:
        """The 10-digit form ``YYMMDD-NNNC`` (``+`` once the person turns 100 this year)."""
        today = today or _swedish_today()
        sep = "+" if today.year - self.birth_year >= 100 else "-"
        return f"{self.number[2:8]}{sep}{self.number[8:]}"

    def formatted(self) -> str:
        """``YYYYMMDD-NNNC``, the form shown to people."""
        return f"{self.number[:8]}-{self.number[8:]}"


def _swedish_today() -> date:
    # Today in Sweden, not on the server's clock: the year decides a 10-digit number's
    # century, and just after midnight on New Year's Eve the server's may still be the old.
    return clock.utc_now().astimezone(clock.SWEDEN).date()


def parse_identity(text: str, *, today: date | None = None) -> PersonalIdentity:
    """Parse a personnummer or samordningsnummer in any of its usual written forms.

    ``today`` fixes the century of a 10-digit number (defaults to today's date in Sweden,
    whatever the server's time zone).
    Raises :class:`InvalidIdentityError` naming what is wrong.
    """
    if not isinstance(text, str):
        raise InvalidIdentityError("an identity number must be given as text")
    found = _TWELVE_DIGIT_SEEN.get(text)
    if found is not None:
        return found
    parsed = _parse(text.strip().replace(" ", ""), today or _swedish_today())
    if _TWELVE_WRITTEN.match(text):
        # The 12-digit forms do not depend on today: remember them by the text as given.
        if len(_TWELVE_DIGIT_SEEN) >= _SEEN_LIMIT:
            _TWELVE_DIGIT_SEEN.clear()
        _TWELVE_DIGIT_SEEN[text] = parsed
    return parsed


def identity_input(text: str, name: str = "--pnr") -> PersonalIdentity:
    """A number a person typed (an option, a form field): parsed, or an
    :class:`~hub.errors.InputError` naming ``name`` and what is wrong, never the number."""
    from hub.errors import InputError

    try:
        return parse_identity(text)
    except InvalidIdentityError as exc:
        raise InputError(f"{name}: {exc}") from None


_TWELVE_WRITTEN = re.compile(r"^\d{8}-?\d{4}$", re.ASCII)
_SEEN_LIMIT = 65_536
_TWELVE_DIGIT_SEEN: dict[str, PersonalIdentity] = {}
"""Valid numbers written ``YYYYMMDDNNNC`` or ``YYYYMMDD-NNNC``, by their exact text: a sync
meets the same people many times (refusals raise and are never kept)."""


@functools.lru_cache(maxsize=65_536)
def _parse(cleaned: str, today: date) -> PersonalIdentity:
    """Parse a cleaned number; cached, since a sync meets the same people many times
    (the result is immutable, and refusals raise, so they are never cached)."""
    if m := _TWELVE.match(cleaned):
        head, sep, tail = m.groups()
        if sep == "+":
            raise InvalidIdentityError(
                "the '+' separator belongs to the 10-digit form; write YYYYMMDD-NNNC"
            )
        number = head + tail
    elif m := _TEN.match(cleaned):
        head, sep, tail = m.groups()
        number = _with_century(head, sep, today) + tail
    elif not cleaned.isascii():
        raise InvalidIdentityError(
            "an identity number is written with the digits 0-9 (and '-' or '+'); "
            "it has other characters"
        )
    else:
        digits = sum(ch.isdigit() for ch in cleaned)
        raise InvalidIdentityError(
            f"an identity number has 10 or 12 digits (YYYYMMDD-NNNC), got {digits} digits"
            if cleaned and re.fullmatch(r"[\d+-]+", cleaned, re.ASCII)
            else "an identity number is written YYYYMMDD-NNNC, YYYYMMDDNNNC or YYMMDD-NNNC"
        )
    _check_date(number)
    expected = luhn_check_digit(number[2:11])
    if int(number[11]) != expected:
        raise InvalidIdentityError(
            f"wrong check digit: the last digit is {number[11]} but the check digit "
            f"for this number is {expected}; check for a typing error"
        )
    return PersonalIdentity(number=number)


def _with_century(yymmdd: str, sep: str, today: date) -> str:
    yy = int(yymmdd[:2])
    year = today.year - (today.year - yy) % 100
    if sep == "+":
        year -= 100
    return f"{year:04d}{yymmdd[2:]}"


def _check_date(number: str) -> None:
    year, month, day = int(number[:4]), int(number[4:6]), int(number[6:8])
    coordination = day >= 60
    if coordination:
        day -= 60
    if year < 1800:
        raise InvalidIdentityError("impossible birth year in the identity number")
    if month > 12 or (month == 0 and not coordination):
        raise InvalidIdentityError(
            f"impossible month {month:02d} in the identity number "
            "(only a samordningsnummer may have month 00)"
        )
    if day == 0:
        if not coordination:
            raise InvalidIdentityError("impossible day 00 in the identity number")
        return
    last = calendar.monthrange(year, month)[1] if month else 31
    if day > last:
        kind = "samordningsnummer day (minus 60)" if coordination else "day"
        raise InvalidIdentityError(
            f"impossible {kind} {day:02d} for month {month:02d} in the identity number"
        )


def _coerce(value: Any) -> Any:
    if isinstance(value, PersonalIdentity):
        return value
    if isinstance(value, str):
        return parse_identity(value)
    return value


IdentityNumber = Annotated[
    PersonalIdentity,
    BeforeValidator(_coerce),
    PlainSerializer(lambda v: v.number, return_type=str),
]
"""Use in models: accepts text in any written form, serialises to the 12-digit form."""
