"""The outbound half: claim outbox items, ask the gate again, push, record the results.

Items go in small batches, with two short transactions around the pushes, so no
transaction (and no database lock) is held while an authority is being called:

1. claim (:mod:`hub.sync.claims`): lock due items (``FOR UPDATE SKIP LOCKED``), lease
   them, ask the gate with each person's consents *as stored now*, and write the
   decisions to the ledger; a deny finishes its item here. A withdrawal committed before
   this point stops the send.
2. push each permitted item with its idempotency key (outside any transaction).
3. record: the delivery results in the ledger and the items' new states.

A process killed between 1 and 3 leaves its items leased; when the lease ends they are
claimed again and pushed with the same idempotency keys, which the authority recognises,
so each is delivered once.

Where the authority takes messages in batches (``Connector.push_batch_size`` > 1, as all
four shipped connectors do), a round's transfers to it go in batches, one after the
other, in queue order. Otherwise each transfer is its own request, and a small thread
pool pushes them: transfers about one person to one authority go one after the other, in
queue order (a newer version never overtakes an older one); different people go side by
side. Different authorities are always served side by side. The idempotency key makes
each push independent of the others.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from hub.connector.base import Connector
from hub.connector.errors import (
    AuthorityError,
    ConnectorConfigError,
    ConnectorError,
    TransientConnectorError,
)
from hub.consent.snapshots import SnapshotCache
from hub.context import Hub
from hub.errors import StorageError
from hub.ledger.event import Action, LedgerEvent, Outcome
from hub.ledger.writer import PreparedEntries, append_prepared, prepare_entries
from hub.model.records import PushResult
from hub.sync.claims import Claim, Claimed, claim_due, plan_claim, take_claim
from hub.sync.gcpolicy import fewer_collections
from hub.sync.outbox import DEAD, DELIVERED, OutboxRepository, QueuedItem, database_clock

log = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(minutes=10)
RESULTS_PATIENCE = timedelta(seconds=60)
"""How long a round keeps trying to write the results of its pushes while the database is
away (a worker stopped meanwhile is then still done within systemd's 90 s)."""
_pause = time.sleep
BREAKER_THRESHOLD = 3
BATCH = 1000
CONCURRENCY = 8


@dataclass
class DeliveryCounts:
    delivered: int = 0
    denied: int = 0
    retried: int = 0
    dead_lettered: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Outcome:
    claim: Claim
    result: PushResult | None = None
    error: ConnectorError | None = None


_Pushed = tuple[list["_Outcome"], list[QueuedItem]]
"""What pushing one queue did: the outcomes, and the items left unattempted."""


def _merged(done: Sequence[_Pushed]) -> _Pushed:
    return [o for pushed, _ in done for o in pushed], [i for _, left in done for i in left]


def _gathered(futures: Sequence[Future[_Pushed]]) -> _Pushed:
    return _merged([future.result() for future in futures])


class Deliverer:
    """Drains due outbox items for the given connectors (by recipient name)."""

    def __init__(
        self,
        hub: Hub,
        connectors: Mapping[str, Connector],
        *,
        actor: str,
        max_attempts: int,
        lease: timedelta = DEFAULT_LEASE,
        clock: Callable[[], datetime] | None = None,
        stop: threading.Event | None = None,
        batch: int = BATCH,
        concurrency: int = CONCURRENCY,
        snapshots: SnapshotCache | None = None,
        share: tuple[int, int] | None = None,
        between_rounds: Callable[[], None] | None = None,
    ) -> None:
        self.hub = hub
        self.connectors = dict(connectors)
        self.actor = actor
        self.max_attempts = max_attempts
        self.lease = lease
        # PostgreSQL: the database's clock, the one every worker host shares
        self.clock = database_clock(hub.db) if clock is None else clock
        self.stop = stop or threading.Event()
        self.batch = batch
        self.concurrency = max(1, concurrency)
        self.counts: dict[str, DeliveryCounts] = {name: DeliveryCounts() for name in connectors}
        self._streak: dict[str, int] = {}
        self._lock = threading.Lock()  # guards connectors, counts and streaks across pushes
        self._snapshots = snapshots or SnapshotCache()
        self.share = share  # (k, n): only transfers about participants with id k modulo n
        self.between_rounds = between_rounds  # e.g. the sync renewing its locks

    def run(self) -> dict[str, DeliveryCounts]:
        """Deliver until nothing is due, every recipient is unavailable, or ``stop`` is set.

        The next batch is claimed while the current one is being pushed; its pushes start
        once the current batch's are done, so batches still reach each authority one
        after the other, in queue order.
        """
        self._due_again_after_a_clock_ahead()
        with (
            fewer_collections(),
            ThreadPoolExecutor(self.concurrency, thread_name_prefix="evi-push") as pool,
        ):
            in_flight: list[Future[_Pushed]] | None = None
            while not self.stop.is_set() and self.connectors:
                try:
                    if self.between_rounds:
                        self.between_rounds()
                    claims, handled = self._claim()
                except Exception:
                    # the database away, say: the pushes already made are written first
                    # (waiting for it a while), not left to be pushed again after their lease
                    if in_flight is not None:
                        with suppress(StorageError):
                            self._record(*_gathered(in_flight))
                    raise
                if in_flight is not None:
                    self._record(*_gathered(in_flight))
                    in_flight = None
                if not handled:
                    break
                if self.stop.is_set() or not self.connectors:
                    self._record([], [claim.item for claim in claims])
                    break
                in_flight = [pool.submit(self._push_queue, q) for q in self._queues(claims)]
            if in_flight is not None:
                self._record(*_gathered(in_flight))
        return self.counts

    def _due_again_after_a_clock_ahead(self) -> None:
        """Transfers put off while the server's clock was ahead (an NTP jump, a test with a
        fake clock) would wait for the date it gave them: no put-off reaches beyond a day,
        so one due later than that is due now. On PostgreSQL, also transfers `evi sync`
        queued on a host whose clock is ahead of the database's (queued means due at once,
        and the database's clock is the one leases are read by). Read first: a write only
        when there is one."""
        now = self.clock()
        ahead = self.hub.db.dialect == "postgresql"
        with self.hub.db.session() as session:
            outbox = OutboxRepository(session)
            beyond = outbox.any_put_off_beyond_reach(now)
            ahead = ahead and outbox.any_queued_ahead(now)
        if not beyond and not ahead:
            return
        with self.hub.db.session(write_lock=True) as session:
            outbox = OutboxRepository(session)
            moved = outbox.due_now_if_put_off_beyond_reach(now) if beyond else 0
            queued = outbox.due_now_if_queued_ahead(now) if ahead else 0
        if moved:
            log.warning(
                "%d transfer(s) were due more than a day ahead, later than any put-off: the "
                "clock was ahead when they were put off; they are due now",
                moved,
            )
        if queued:
            log.warning(
                "%d transfer(s) were queued due later than the database server's time: the "
                "clock of the host that ran `evi sync` is ahead of it (keep it on NTP); they "
                "are due now",
                queued,
            )

    def _queues(self, claims: list[Claim]) -> list[list[Claim]]:
        """The claims in the queues that are pushed side by side (claims in queue order)."""
        queues: dict[tuple[str, str], list[Claim]] = {}
        for claim in claims:
            connector = self.connectors.get(claim.recipient)
            if connector is not None and connector.push_batch_size > 1:
                # one queue per authority, sent in batches one after the other
                queues.setdefault((claim.recipient, ""), []).append(claim)
            else:
                queues.setdefault((claim.recipient, claim.transfer.participant), []).append(claim)
        return list(queues.values())

    def _push_queue(self, claims: list[Claim]) -> _Pushed:
        """Push one queue in order, in batches where the authority takes them; stop at the
        first failure (the rest are released untouched, to keep the order next time).

        A queue is one person's transfers to one authority, or, for an authority that
        takes batches, all of its transfers in this round in queue order, which keeps
        each person's order too."""
        pushed: list[_Outcome] = []
        with self._lock:
            connector = self.connectors.get(claims[0].recipient)
        size = 1 if connector is None else connector.push_batch_size
        for start in range(0, len(claims), size):
            chunk = claims[start : start + size]
            if self.stop.is_set() or chunk[0].recipient not in self.connectors:
                return pushed, [c.item for c in claims[start:]]
            outcomes = self._push(chunk)
            if outcomes is None:
                return pushed, [c.item for c in claims[start:]]
            pushed.extend(outcomes)
            if any(o.error is not None for o in outcomes):
                return pushed, [c.item for c in claims[start + size :]]
        return pushed, []

    # -- 1. claim -----------------------------------------------------------------------

    def _claim(self) -> tuple[list[Claim], int]:
        done = self._claim_in_two_steps() if self.hub.db.dialect == "sqlite" else None
        if done is None:
            now = self.clock()  # before the transaction: the database's clock needs a query
            with self.hub.db.session(write_lock=True) as session:
                done = self._claim_now(session, now)
        for item in done.denied:
            self.counts[item.recipient].denied += 1
        return done.claims, done.handled

    def _claim_in_two_steps(self) -> Claimed:
        """SQLite: decide while reading, then take the claim in a short write transaction
        (see :mod:`hub.sync.claims`); claims in one step if something changed between."""
        with self.hub.db.session() as session:
            plan = plan_claim(
                session, self.hub.keys, self._snapshots, self.clock(), **self._wanted()
            )
        if plan is None:
            return Claimed([], [])
        with self.hub.db.session(write_lock=True) as session:
            taken = take_claim(session, plan, self.lease)
            return taken if taken is not None else self._claim_now(session, self.clock())

    def _claim_now(self, session: Session, now: datetime) -> Claimed:
        """Claim in one step at ``now``, in ``session``'s write transaction."""
        return claim_due(
            session,
            self.hub.keys,
            self._snapshots,
            now,
            lease=self.lease,
            **self._wanted(),
        )

    def _wanted(self) -> dict[str, Any]:
        """Which due items this deliverer claims, and as whom."""
        return {
            "limit": self.batch,
            "recipients": sorted(self.connectors),
            "share": self.share,
            "actor": self.actor,
        }

    # -- 2. push ------------------------------------------------------------------------

    def _push(self, chunk: list[Claim]) -> list[_Outcome] | None:
        """Push one transfer, or a batch in one call; ``None`` if the connector is given up."""
        recipient = chunk[0].recipient
        with self._lock:
            connector = self.connectors.get(recipient)
        if connector is None:
            return None
        try:
            if len(chunk) == 1 and connector.push_batch_size == 1:
                results = [connector.push(chunk[0].transfer)]
            else:
                results = connector.push_many([c.transfer for c in chunk])
            if len(results) != len(chunk):
                raise AuthorityError(
                    recipient, f"push_many answered {len(results)} results for {len(chunk)}"
                )
        except ConnectorConfigError as exc:
            # Our side is wrong: stop using this connector; the items are released untouched.
            self._give_up_on(recipient, exc)
            return None
        except ConnectorError as exc:
            if isinstance(exc, TransientConnectorError):
                with self._lock:
                    streak = self._streak[recipient] = self._streak.get(recipient, 0) + 1
                if streak >= BREAKER_THRESHOLD:
                    self._give_up_on(recipient, exc)
            return [_Outcome(claim, error=exc) for claim in chunk]
        except Exception as exc:
            # A fault in the connector's code (or a hub bug its data runs into) must not
            # lose the round for every authority: this one is given up on for the run, and
            # its transfers are tried again later like after a transient failure (same
            # keys). Named by type only: the text may quote what was being sent.
            failed = TransientConnectorError(
                recipient, f"push stopped by an unexpected {type(exc).__name__}"
            )
            self._give_up_on(recipient, failed)
            return [_Outcome(claim, error=failed) for claim in chunk]
        with self._lock:
            self._streak[recipient] = 0
        return [
            _Outcome(claim, result=result) for claim, result in zip(chunk, results, strict=True)
        ]

    def _give_up_on(self, recipient: str, exc: ConnectorError) -> None:
        """Stop delivering to ``recipient`` for this run; its items wait for the next one."""
        with self._lock:
            if self.connectors.pop(recipient, None) is None:
                return
            self.counts[recipient].errors.append(exc.message)
        log.warning("delivery to %s stopped for this run: %s", recipient, exc.message)

    # -- 3. record ----------------------------------------------------------------------

    def _record(self, outcomes: list[_Outcome], skipped: list[QueuedItem]) -> None:
        """Write the results: the ledger entries are encoded before the write lock is taken.

        Only items still under this claimant's lease are written (and counted): one whose
        lease ran out while it was pushed may have been claimed and pushed by another
        worker meanwhile, whose result is the one to keep (a retry written over its
        ``delivered`` would send it a third time). Every push is logged all the same: the
        authority got it (and recognises the repeat by its key)."""
        now = self.clock()
        events, settled = [], []
        for outcome in outcomes:
            outcome.claim.item.attempts += 1
            event, counted = self._settle(outcome.claim.item, outcome, now)
            events.append(event)
            settled.append((outcome.claim.item, counted))
        entries = prepare_entries(events)
        items = [item for item, _ in settled]
        mine = self._write_results(items, skipped, entries, now)
        lost = 0
        for item, counted in settled:
            if item.id in mine:
                counts = self.counts[item.recipient]
                setattr(counts, counted, getattr(counts, counted) + 1)
            else:
                lost += 1
        if lost:
            log.warning(
                "%d transfer(s) outlasted their lease (%d s) while being pushed and were "
                "claimed again meanwhile: their results are logged, their state is left to "
                "the newer claim (the authority recognises a repeat by its key); a longer "
                "--lease avoids this",
                lost,
                round(self.lease.total_seconds()),
            )

    def _write_results(
        self,
        items: list[QueuedItem],
        skipped: list[QueuedItem],
        entries: PreparedEntries,
        now: datetime,
    ) -> set[int]:
        """Write the settled ``items``, release the ``skipped`` and append ``entries``; the
        ids of the items this claim still held (see :meth:`_record`).

        The pushes are done: their results are kept in memory and written again while the
        database is away for a moment (a PostgreSQL restart, a fail-over), for up to
        :data:`RESULTS_PATIENCE`, instead of being lost with the transaction and the
        transfers pushed again once their lease ends. A write whose commit went through
        though its answer was lost is recognised by the rows it wrote, and not repeated
        (the log would have its entries twice)."""
        waited = 0.0
        for attempt in itertools.count():
            try:
                with self.hub.db.session(write_lock=True) as session:
                    outbox = OutboxRepository(session)
                    mine = outbox.held(items + skipped)
                    if attempt and not mine & {i.id for i in items} and outbox.written(items):
                        return {item.id for item in items}  # written before the answer was lost
                    outbox.release([item.id for item in skipped if item.id in mine], now)
                    outbox.save([item for item in items if item.id in mine])
                    append_prepared(session, entries)
                    return mine
            except StorageError as exc:
                wait = min(2.0**attempt, 15.0)
                if not items or waited + wait > RESULTS_PATIENCE.total_seconds():
                    raise
                log.warning(
                    "the results of %d pushed transfer(s) could not be written (%s); "
                    "trying again in %.0f s",
                    len(items),
                    exc.message.split("; ")[0],
                    wait,
                )
                _pause(wait)
                waited += wait
        raise AssertionError("unreachable")

    def _settle(
        self, item: QueuedItem, outcome: _Outcome, now: datetime
    ) -> tuple[LedgerEvent, str]:
        """The item's new state (written by ``OutboxRepository.save``), its ledger entry
        and the count it goes to (``delivered``, ``retried`` or ``dead_lettered``)."""
        result, exc = outcome.result, outcome.error
        if result is not None and result.accepted:
            OutboxRepository.finish(item, DELIVERED, now)
            reason = "duplicate" if result.duplicate else "delivered"
            return self._event(outcome.claim, now, Outcome.SUCCESS, reason), "delivered"
        if result is not None:
            detail = (result.detail or "refused")[:300]
            OutboxRepository.finish(item, DEAD, now, error=f"refused by {item.recipient}: {detail}")
            event = self._event(outcome.claim, now, Outcome.SERIOUS_FAILURE, "refused")
            return event, "dead_lettered"
        assert exc is not None
        if isinstance(exc, TransientConnectorError) and item.attempts < self.max_attempts:
            OutboxRepository.retry_later(item, now, exc.detail, exc.retry_after)
            event = self._event(outcome.claim, now, Outcome.MINOR_FAILURE, exc.detail[:200])
            return event, "retried"
        why = exc.detail
        if isinstance(exc, TransientConnectorError):
            times = "1 attempt" if item.attempts == 1 else f"{item.attempts} attempts"
            why = f"gave up after {times}: {exc.detail}"
        OutboxRepository.finish(item, DEAD, now, error=why[:500])
        event = self._event(outcome.claim, now, Outcome.SERIOUS_FAILURE, exc.detail[:200])
        return event, "dead_lettered"

    def _event(self, claim: Claim, now: datetime, outcome: Outcome, reason: str) -> LedgerEvent:
        return LedgerEvent(
            time=now,
            action=Action.DELIVERY,
            outcome=outcome,
            reason=reason,
            origin=claim.transfer.origin,
            recipient=claim.recipient,
            actor=self.actor,
            purpose=claim.transfer.purpose,
            categories=(claim.transfer.category.value,),
            payload_sha256=claim.payload_sha256,
            participant=claim.transfer.participant,
            correlation_id=claim.key,
        )
