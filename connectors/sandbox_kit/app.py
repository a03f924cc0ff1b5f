"""The frame every sandbox app is built in: population, feed, state, knobs, ``/_sandbox``.

An authority's ``sandbox.py`` creates a :class:`SandboxKit`, asks it for the FastAPI app
(which already serves the ``/_sandbox`` endpoints and injects faults) and adds the
authority's own API routes, using the kit for people, records and pushes.

``/_sandbox`` (never faulted, never authenticated: it is the test bench, not the
authority's API):

* ``GET  /_sandbox/received``      ``{"unique": N, "duplicates": M, "items": [...]}``
* ``GET  /_sandbox/subscriptions`` ``{"count": N, "numbers": [...]}``
* ``GET  /_sandbox/people``        the synthetic people (``?offset=&limit=``)
* ``GET  /_sandbox/info``          seed, population, rounds and knobs
* ``POST /_sandbox/advance``       ``{"rounds": 1}``: time passes, every person gets a record
* ``PATCH /_sandbox/knobs``        change fault knobs on a running sandbox
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import Body, FastAPI, HTTPException, Query
from pydantic import ValidationError

from connectors.sandbox_kit.faults import FaultMiddleware, Faults
from connectors.sandbox_kit.feed import Timeline, TimelineFeed, draw
from connectors.sandbox_kit.population import Person, Population
from connectors.sandbox_kit.state import SandboxState
from hub.connector.sandbox import SandboxSettings

_KNOBS = frozenset(
    {
        "latency_ms",
        "fail_rate",
        "rate_limit_rate",
        "retry_after_seconds",
        "timeout_rate",
        "stall_seconds",
        "malformed_rate",
        "invalid_record_rate",
        "unknown_code_rate",
        "fault_budget",
        "all_subscribed",
    }
)


class SandboxKit:
    """Shared machinery of one running sandbox."""

    def __init__(self, name: str, settings: SandboxSettings) -> None:
        self.name = name
        self.state = SandboxState(name, settings.state_dir)
        # Knobs changed at run time (PATCH /_sandbox/knobs) belong to the authority's state
        # like its subscriptions: they hold across restarts until changed again or --fresh.
        stored = self.state.get_setting("knobs")
        if stored:
            settings = SandboxSettings.model_validate(
                {**settings.model_dump(), **json.loads(stored)}
            )
        self.settings = settings
        self.population = Population(settings.seed, settings.population)
        # Rounds added by /_sandbox/advance and records written again for people registered
        # late outlive a restart, on top of records_per_person. ("advanced" is how a state
        # written before the timeline counted its added rounds.)
        self._legacy_rounds = int(self.state.get_setting("advanced") or 0)
        self.faults = Faults(settings)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._timeline = self._current()
        self._feed: tuple[tuple[bool, tuple[int, int] | None], TimelineFeed] | None = None

    def _current(self) -> Timeline:
        """The timeline as the state holds it now (another process, e.g. a sync's helper
        with the same state directory, may have written to it)."""
        stamp = self.state.stamp()
        if stamp != self._stamp:
            events = [(None, self._legacy_rounds), *self.state.timeline_events()]
            self._timeline = Timeline.build(
                len(self.population), self.settings.records_per_person, events
            )
            self._stamp = stamp
        return self._timeline

    @property
    def timeline(self) -> Timeline:
        """Every sequence number this authority has written (see :class:`Timeline`)."""
        with self._lock:
            return self._current()

    @property
    def rounds(self) -> int:
        """How many rounds of records exist (every person has one record per round)."""
        return self.timeline.rounds

    def advance(self, rounds: int) -> int:
        """Time passes: every person gets ``rounds`` more records. Returns the rounds now."""
        with self._lock:
            self.state.add_timeline_event(None, rounds)  # after the rewrites due before it
            return self._current().rounds

    def subscribe(self, number: str) -> bool:
        """Follow a person; returns whether that is new.

        A person followed anew has their records written again as changed now, at the end
        of the feed, so a hub reading on from its cursor gets them (what docs/connectors.md
        asks of an authority that keeps a list). Not with ``all_subscribed``, where the feed
        holds everyone all the time. The records are written when the feed is next read or
        time next passes, those of everyone registered meanwhile in the order of the
        population: the hub registers people several at a time, and the same registrations
        made in another order must give the same feed (and so the same idempotency keys).
        """
        index = self.population.index_of(number)
        with self._lock:
            rounds = self._current().rounds
            rewrite = None
            if index is not None and rounds > 0 and not self.settings.all_subscribed:
                rewrite = (index, rounds)
            return self.state.subscribe(number, rewrite)

    def unsubscribe(self, number: str) -> bool:
        """Stop following a person; returns whether they were followed."""
        return self.state.unsubscribe(number)

    # -- people and records -------------------------------------------------------------
    def person_at(self, j: int) -> Person:
        """The person record position ``j`` is about."""
        return self.population.person(j % len(self.population))

    def round_of(self, j: int) -> int:
        return j // len(self.population)

    def subscribed_people(self) -> Sequence[int]:
        """Sorted indices of the people the hub subscribed (everyone with all_subscribed)."""
        if self.settings.all_subscribed:
            return range(len(self.population))
        return self.people_for(self.state.subscribed())

    def people_for(self, numbers: Iterable[str]) -> list[int]:
        """Sorted indices of the given numbers that belong to this population."""
        found = {self.population.index_of(n) for n in numbers}
        return sorted(i for i in found if i is not None)

    def feed(self, people: Sequence[int] | None = None) -> TimelineFeed:
        """The change feed about ``people`` (default: the subscribed people).

        ``feed.positions(start, offset, limit)`` gives sequence numbers in order (a cursor,
        and :func:`~connectors.sandbox_kit.feed.changed_at` their time);
        ``feed.entries(…)`` gives each with its record ``j``, from which the record's
        content is drawn. The two are equal until a person is registered late.
        """
        with self._lock:
            self.state.write_rewrites()
            timeline = self._current()
            if people is not None:
                return timeline.feed(people)
            key = (self.settings.all_subscribed, self._stamp)
            if self._feed is None or self._feed[0] != key:
                self._feed = (key, timeline.feed(self.subscribed_people()))
            return self._feed[1]

    def record_at(self, seq: int) -> int:
        """The record ``j`` written at sequence number ``seq``."""
        return self.timeline.record(seq)

    def is_invalid(self, j: int) -> bool:
        """Whether record ``j`` violates the API's schema (the same answer every time)."""
        rate = self.settings.invalid_record_rate
        return rate > 0 and draw(self.settings.seed, "invalid", j).random() < rate

    def has_unknown_code(self, j: int) -> bool:
        """Whether record ``j`` carries a code no mapping knows (the same answer every time)."""
        rate = self.settings.unknown_code_rate
        return rate > 0 and draw(self.settings.seed, "unknown", j).random() < rate

    # -- the app ------------------------------------------------------------------------
    def create_app(self, title: str, description: str) -> FastAPI:
        app = FastAPI(title=title, description=description, docs_url=None, redoc_url=None)
        app.add_middleware(FaultMiddleware, faults=self.faults)
        app.state.kit = self
        self._add_bench_routes(app)
        return app

    def _add_bench_routes(self, app: FastAPI) -> None:
        kit = self

        @app.get("/_sandbox/received")
        async def received(limit: int | None = Query(default=None, ge=0)) -> dict[str, Any]:
            return kit.state.received(limit)

        @app.get("/_sandbox/subscriptions")
        async def subscriptions() -> dict[str, Any]:
            numbers = kit.state.subscribed()
            return {"count": len(numbers), "numbers": numbers}

        @app.get("/_sandbox/people")
        async def people(
            offset: int = Query(default=0, ge=0), limit: int = Query(default=100, ge=0, le=10_000)
        ) -> dict[str, Any]:
            end = min(offset + limit, len(kit.population))
            items = []
            for i in range(offset, end):
                p = kit.population.person(i)
                items.append(
                    {
                        "index": i,
                        "number": p.number,
                        "given_name": p.given_name,
                        "family_name": p.family_name,
                        "protected": p.protected,
                    }
                )
            return {"total": len(kit.population), "items": items}

        @app.get("/_sandbox/info")
        async def info() -> dict[str, Any]:
            knobs = kit.settings.model_dump(mode="json", include=set(_KNOBS))
            return {
                "name": kit.name,
                "seed": kit.settings.seed,
                "population": len(kit.population),
                "rounds": kit.rounds,
                "knobs": knobs,
            }

        @app.post("/_sandbox/advance")
        async def advance(
            rounds: int = Body(default=1, embed=True, ge=1, le=1000),
        ) -> dict[str, int]:
            return {"rounds": kit.advance(rounds)}

        @app.patch("/_sandbox/knobs")
        async def knobs(changes: dict[str, Any] = Body(...)) -> dict[str, Any]:
            unknown = sorted(set(changes) - _KNOBS)
            if unknown:
                raise HTTPException(422, f"unknown knobs: {', '.join(unknown)}")
            try:
                updated = SandboxSettings.model_validate({**kit.settings.model_dump(), **changes})
            except ValidationError as exc:
                raise HTTPException(422, str(exc.errors(include_input=False))) from None
            kit.settings = updated
            kit.faults.update(updated)
            kit.state.set_setting(
                "knobs", json.dumps(updated.model_dump(mode="json", include=set(_KNOBS)))
            )
            return updated.model_dump(mode="json", include=set(_KNOBS))
