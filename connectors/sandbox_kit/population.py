"""The synthetic population: who the sandboxes know, as a pure function of the seed.

Person ``i`` of a population with seed ``s`` always has the same identity number, name and
address, wherever the sandbox runs. Numbers are Skatteverket's official test
personnummer and samordningsnummer (never invented, never real); the seed shuffles them.
People are built on demand, so a large population costs memory only for its numbers.
"""

from __future__ import annotations

import csv
import random
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

from faker import Faker

DATA_FILES = ("skatteverket_testpersonnummer.csv", "skatteverket_testsamordningsnummer.csv")
PROTECTED_SHARE = 0.02  # about 2 in 100 people have skyddad identitet


@lru_cache(maxsize=1)
def skatteverket_numbers() -> tuple[str, ...]:
    """Every official test number shipped with the sandboxes (12 digits), in file order."""
    numbers: list[str] = []
    data = files("connectors.sandbox_kit") / "data"
    for name in DATA_FILES:
        with (data / name).open(encoding="utf-8") as fh:
            reader = csv.reader(fh)
            next(reader)  # header
            numbers.extend(row[0].strip() for row in reader if row and row[0].strip())
    return tuple(numbers)


@dataclass(frozen=True)
class Person:
    """One synthetic person. ``number`` is a Skatteverket test number (12 digits)."""

    index: int
    number: str
    given_name: str
    family_name: str
    street: str
    postcode: str
    city: str
    protected: bool

    @property
    def gender(self) -> str:
        return "male" if int(self.number[10]) % 2 else "female"

    @property
    def dashed(self) -> str:
        """``YYYYMMDD-NNNN``, the written form most Swedish systems use."""
        return f"{self.number[:8]}-{self.number[8:]}"


class Population:
    """``size`` people drawn from the test numbers by ``seed``."""

    def __init__(self, seed: int, size: int) -> None:
        available = skatteverket_numbers()
        distinct = len(set(available))
        if not 1 <= size <= distinct:
            raise ValueError(
                f"population must be between 1 and {distinct} "
                "(the number of distinct Skatteverket test numbers)"
            )
        shuffled = list(available)
        random.Random(f"evi-population:{seed}").shuffle(shuffled)
        # Skatteverket's list holds two numbers twice: each person gets a number of their
        # own (a later copy is passed over, so populations without one are as they were).
        shuffled = list(dict.fromkeys(shuffled))
        self.seed = seed
        self.numbers: tuple[str, ...] = tuple(shuffled[:size])
        self._index = {number: i for i, number in enumerate(self.numbers)}
        self._faker = Faker("sv_SE")
        self._lock = threading.Lock()  # Faker's seeding is per instance, not per call
        # Names cost ~0.2 ms each; a person is asked for once per record. The cache is
        # bounded by the population (at most the 23,966 distinct test numbers, a few MB).
        self._people: dict[int, Person] = {}

    def __len__(self) -> int:
        return len(self.numbers)

    def index_of(self, number: str) -> int | None:
        """The person with this 12-digit number, or ``None`` if not in this population."""
        return self._index.get(number)

    def person(self, index: int) -> Person:
        """Person ``index`` (0-based), the same every time and in every process."""
        cached = self._people.get(index)
        if cached is None:
            cached = self._people[index] = self._make(index)
        return cached

    def _make(self, index: int) -> Person:
        number = self.numbers[index]
        rng = random.Random(f"evi-person:{self.seed}:{index}")
        female = int(number[10]) % 2 == 0
        with self._lock:
            self._faker.seed_instance(rng.getrandbits(64))
            given = self._faker.first_name_female() if female else self._faker.first_name_male()
            family = self._faker.last_name()
            street = self._faker.street_address()
            postcode = self._faker.postcode()
            city = self._faker.city()
        return Person(
            index=index,
            number=number,
            given_name=given,
            family_name=family,
            street=street,
            postcode=postcode,
            city=city,
            protected=rng.random() < PROTECTED_SHARE,
        )
