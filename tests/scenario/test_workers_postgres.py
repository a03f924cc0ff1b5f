"""Scale-out on PostgreSQL: four `evi worker` processes drain one outbox, one of them is
SIGKILLed midway, and still every transfer is delivered once and logged; workers whose
connections the server keeps cutting (a restart) do the same."""

from __future__ import annotations

import select
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_support import pg_schema_url
from served import Sandboxes, evi, evi_env, evi_process
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SEED, POPULATION, LATENCY_MS = 5, 30, 25


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg_schema_url() as url:
        yield url


def _scalar(url: str, sql: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar() or 0)
    finally:
        engine.dispose()


def _wait_ready(
    worker: subprocess.Popen[str], deadline: float, line_start: str = "worker ready"
) -> None:
    """Wait until ``worker`` says it is ready (its stop signals are handled from then on),
    or another line that starts with ``line_start``."""
    assert worker.stderr is not None
    said = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([worker.stderr], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        line = worker.stderr.readline()
        if not line:
            break
        said.append(line)
        if line.startswith(line_start):
            return
    raise AssertionError(f"a worker never got ready (exit {worker.poll()}): {''.join(said)}")


def _night_queued(sandboxes: Sandboxes, env: dict[str, str], pg_url: str) -> int:
    """The demo's caseload and a night queued for the workers (`evi sync --queue-only`);
    how many transfers wait in the outbox."""
    sandboxes.setup_demo(env)
    queued = evi(env, "sync", "--queue-only")
    assert queued.returncode == 0, queued.stdout + queued.stderr
    return _scalar(pg_url, "SELECT COUNT(*) FROM outbox")


def test_four_workers_one_killed_deliver_every_transfer_once(tmp_path: Path, pg_url: str) -> None:
    home = tmp_path / "home"
    sandboxes = Sandboxes(home, seed=SEED, population=POPULATION, latency_ms=LATENCY_MS)
    env = evi_env(home, EVI_DATABASE_URL=pg_url)
    workers: list[subprocess.Popen[str]] = []
    try:
        total = _night_queued(sandboxes, env, pg_url)
        assert total > 40, "too little work to share between workers"

        workers = [evi_process(env, "worker", "--poll", "0.2", "--lease", "3") for _ in range(4)]
        deadline = time.monotonic() + 120
        for worker in workers:  # a SIGTERM before its handler is set would simply kill it
            _wait_ready(worker, deadline)
        while (
            _scalar(pg_url, "SELECT COUNT(*) FROM outbox WHERE status = 'delivered'") < total // 4
        ):
            assert time.monotonic() < deadline, "workers deliver nothing"
            time.sleep(0.1)
        workers[0].send_signal(signal.SIGKILL)  # midway, quite possibly mid-push
        while _scalar(pg_url, "SELECT COUNT(*) FROM outbox WHERE status = 'pending'"):
            assert time.monotonic() < deadline, "the outbox was not drained"
            time.sleep(0.2)
        for worker in workers[1:]:
            worker.send_signal(signal.SIGTERM)
        for worker in workers[1:]:
            assert worker.wait(timeout=30) == 0, worker.stderr.read() if worker.stderr else ""

        _each_delivered_once_and_logged(pg_url, sandboxes, env)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
        sandboxes.stop()


def test_workers_whose_connections_are_cut_again_and_again_deliver_every_transfer_once(
    tmp_path: Path, pg_url: str
) -> None:
    """PostgreSQL restarting mid-drain, as its clients see it: every connection of two
    workers ended by the server, ten times over a few seconds. They go on (waiting while
    it is away), and stop with 0 on SIGTERM; every transfer is delivered once and logged."""
    home = tmp_path / "home"
    sandboxes = Sandboxes(home, seed=SEED, population=4 * POPULATION, latency_ms=LATENCY_MS)
    name = "evi-walk-" + uuid.uuid4().hex[:8]  # only these workers' connections are cut
    tagged = make_url(pg_url).update_query_dict({"application_name": name})
    worker_env = evi_env(home, EVI_DATABASE_URL=tagged.render_as_string(hide_password=False))
    env = evi_env(home, EVI_DATABASE_URL=pg_url)
    workers: list[subprocess.Popen[str]] = []
    try:
        total = _night_queued(sandboxes, env, pg_url)

        # A claim whose commit went through unanswered is left to its lease: a short one
        lease = ("--lease", "20")
        workers = [evi_process(worker_env, "worker", "--poll", "0.2", *lease) for _ in range(2)]
        deadline = time.monotonic() + 120
        for worker in workers:  # serving: a database gone as a worker starts is exit 1
            _wait_ready(worker, deadline, "worker serves")
        while _scalar(pg_url, "SELECT COUNT(*) FROM outbox WHERE status = 'delivered'") < 10:
            assert time.monotonic() < deadline, "workers deliver nothing"
            time.sleep(0.05)
        cut = 0
        for _ in range(10):
            cut += _scalar(
                pg_url,
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                f"WHERE application_name = '{name}'",
            )
            time.sleep(0.3)
        assert cut, "no worker connection was cut"
        while _scalar(pg_url, "SELECT COUNT(*) FROM outbox WHERE status = 'pending'"):
            assert time.monotonic() < deadline, _stuck(pg_url, workers)
            time.sleep(0.2)
        said = ""
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            code = worker.wait(timeout=30)
            said += worker.stderr.read() if worker.stderr else ""
            assert code == 0, said
        assert "internal error" not in said and "Traceback" not in said

        assert _each_delivered_once_and_logged(pg_url, sandboxes, env) == total
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
        sandboxes.stop()


def _stuck(url: str, workers: list[subprocess.Popen[str]]) -> str:
    """Why the outbox was not drained: what waits, and what the workers said."""
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    said = [worker.communicate(timeout=30)[1] for worker in workers]
    engine = create_engine(url)
    with engine.connect() as conn:
        waiting = conn.execute(
            text(
                "SELECT COUNT(*), MIN(next_attempt_at - now()), MAX(attempts) FROM outbox "
                "WHERE status = 'pending'"
            )
        ).one()
    engine.dispose()
    return f"the outbox was not drained: {tuple(waiting)} waiting; the workers said {said}"


def _each_delivered_once_and_logged(pg_url: str, sandboxes: Sandboxes, env: dict[str, str]) -> int:
    """Every transfer delivered, each authority holding each once (whatever was pushed
    again), each delivery in the log, and the log verifying; how many transfers."""
    assert _scalar(pg_url, "SELECT COUNT(*) FROM outbox WHERE status <> 'delivered'") == 0
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        by_recipient = {
            recipient: n
            for recipient, n in conn.execute(
                text("SELECT recipient, COUNT(*) FROM outbox GROUP BY recipient")
            )
        }
        keys = set(conn.execute(text("SELECT idempotency_key FROM outbox")).scalars())
        logged = set(
            conn.execute(
                text(
                    "SELECT correlation_id FROM ledger_entry "
                    "WHERE action = 'delivery' AND outcome = 'success'"
                )
            ).scalars()
        )
    engine.dispose()
    for recipient, n in by_recipient.items():
        assert sandboxes.received(recipient)["unique"] == n, recipient
    assert keys <= logged, "a delivered transfer is missing from the log"
    verified = evi(env, "log", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    return sum(by_recipient.values())
