"""Run a sync's per-connector jobs side by side in forked helper processes.

One Python process uses one core; most of a sync is Python (mapping, the gate, the
ledger's encoding), so :func:`run_forked` gives each job (one connector's pull, one
authority's deliveries) a process of its own. The helpers are forked, not started
afresh: they begin with everything the parent has loaded (settings, keys, the consent
snapshots the run has read) at no cost, and share the database like any other writers
(SQLite's write lock is taken in turns, see :mod:`hub.store.db`).

A helper never outlives the sync that forked it: on Linux the kernel kills it the moment
its parent dies (``PR_SET_PDEATHSIG``), so a sync killed half-way leaves no process
behind that could still write; what the helpers committed is as safe as the parent's own
work (every step is a transaction, every push carries its idempotency key).

A job gets a ``send`` function for progress messages and returns a picklable result, which
:func:`run_forked` hands back in job order. A job that raises has its exception raised
again in the parent (after every other job finished); a helper that dies without an
answer raises :class:`HelperDiedError`.

Written by hand over :mod:`multiprocessing` because the pools it and
:mod:`concurrent.futures` offer start their workers before the jobs exist (so the workers
do not hold what the parent loaded for the jobs) and cannot tie a worker's life to the
parent's; what is left is a pipe per job and a loop.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import pickle
import signal
import sys
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

Send = Callable[[Any], None]
Job = Callable[[Send], Any]

_RESULT, _ERROR, _MESSAGE = "result", "error", "message"
IDLE_SECONDS = 5.0
"""The longest the parent waits for its helpers before running ``idle`` again."""
_PR_SET_PDEATHSIG = 1


class HelperDiedError(RuntimeError):
    """A helper process ended without handing back its result."""


def available() -> bool:
    """Whether helpers can be forked here (Linux: fork, and death with the parent)."""
    return sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()


def run_forked(
    jobs: Sequence[Job],
    on_message: Callable[[int, Any], None] | None = None,
    *,
    before_job: Callable[[], None] | None = None,
    at_once: int | None = None,
    idle: Callable[[], None] | None = None,
) -> list[Any]:
    """Run every job in a forked process of its own; their results in job order.

    At most ``at_once`` helpers run at a time (default: one per core); the next job starts
    when one ends. ``on_message(i, message)`` receives, in the parent, what job ``i``
    sent. ``before_job`` runs first in every helper (e.g. to drop database connections
    inherited from the parent). ``idle`` runs in the parent between its waits, at least
    every :data:`IDLE_SECONDS` (e.g. to renew the run's locks); what it raises stops the
    run (the helpers die with it).
    """
    sys.stdout.flush()  # else a helper would write the parent's unflushed output again
    sys.stderr.flush()
    context = multiprocessing.get_context("fork")
    parent = os.getpid()
    limit = max(1, at_once or os.cpu_count() or 1)
    ends: dict[Connection, int] = {}
    helpers: dict[int, Any] = {}
    results: dict[int, tuple[str, Any]] = {}
    waiting = list(enumerate(jobs))
    while waiting or ends:
        while waiting and len(ends) < limit:
            index, job = waiting.pop(0)
            receive, send = context.Pipe(duplex=False)
            helper = context.Process(
                target=_helper,
                args=(job, send, parent, before_job),
                name=f"evi-sync-{index}",
                daemon=True,
            )
            helper.start()
            send.close()
            ends[receive] = index
            helpers[index] = helper
        if idle is not None:
            try:
                idle()
            except BaseException:
                _stop(list(helpers.values()))
                raise
        for ready in wait(list(ends), timeout=IDLE_SECONDS):
            assert isinstance(ready, Connection)
            index = ends[ready]
            try:
                kind, value = ready.recv()
            except EOFError:
                del ends[ready]
                ready.close()
                helpers[index].join()
                continue
            if kind == _MESSAGE:
                if on_message is not None:
                    on_message(index, value)
            else:
                results[index] = (kind, value)
    failure: BaseException | None = None
    out: list[Any] = []
    for index in range(len(jobs)):
        kind, value = results.get(index, (_ERROR, None))
        if kind == _ERROR and failure is None:
            failure = value or HelperDiedError(
                f"sync helper process {index} ended without an answer (exit code "
                f"{helpers[index].exitcode}); the work it committed stays, run `evi sync` again"
            )
        out.append(value)
    if failure is not None:
        raise failure
    return out


def _stop(helpers: Iterable[Any]) -> None:
    """End the helpers still running (SIGTERM; a write they were in is rolled back)."""
    for helper in helpers:
        if helper.is_alive():
            helper.terminate()
    for helper in helpers:
        helper.join()


def _helper(job: Job, pipe: Connection, parent: int, before_job: Callable[[], None] | None) -> None:
    _die_with_parent(parent)
    # SIGTERM ends a helper (_stop), whatever handler the parent had installed (say, a
    # worker's in the same process, which would only set a flag no helper looks at).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        if before_job is not None:
            before_job()
        result = job(lambda message: pipe.send((_MESSAGE, message)))
    except BaseException as exc:  # handed to the parent, which raises it
        try:
            pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own bytes, just made
        except Exception:  # an exception that does not survive the trip: send its words
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        pipe.send((_ERROR, exc))
        return
    pipe.send((_RESULT, result))


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to kill this process when its parent dies (Linux)."""
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request was made
        os._exit(1)
