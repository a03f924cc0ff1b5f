"""Helper processes for a sync (hub.sync.fanout): results, failures, and no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hub.sync import fanout

pytestmark = pytest.mark.skipif(not fanout.available(), reason="helpers need Linux fork")


def test_results_come_back_in_job_order_with_every_message() -> None:
    def job(n: int) -> fanout.Job:
        def run(send: fanout.Send) -> tuple[int, int]:
            for step in range(3):
                send((n, step))
            return n * n, os.getpid()

        return run

    messages: list[tuple[int, object]] = []
    results = fanout.run_forked(
        [job(n) for n in range(5)], lambda i, m: messages.append((i, m)), at_once=2
    )
    assert [square for square, _ in results] == [0, 1, 4, 9, 16]
    assert os.getpid() not in {pid for _, pid in results}, "a job ran in the parent"
    for n in range(5):
        assert [m for i, m in messages if i == n] == [(n, 0), (n, 1), (n, 2)]


def test_no_more_helpers_than_asked_run_at_once(tmp_path: Path) -> None:
    log = tmp_path / "spans"

    def job(n: int) -> fanout.Job:
        def run(_send: fanout.Send) -> None:
            start = time.monotonic()
            time.sleep(0.2)
            with log.open("a") as fh:
                fh.write(f"{start} {time.monotonic()}\n")

        return run

    fanout.run_forked([job(n) for n in range(6)], at_once=2)
    spans = [tuple(map(float, line.split())) for line in log.read_text().splitlines()]
    assert len(spans) == 6
    for start, _ in spans:  # how many were running when each one started
        assert sum(1 for s, e in spans if s <= start < e) <= 2


def test_a_job_that_raises_is_raised_in_the_parent_after_the_others_finish(
    tmp_path: Path,
) -> None:
    def job(n: int) -> fanout.Job:
        def run(_send: fanout.Send) -> int:
            if n == 1:
                raise LookupError("connector 1 is unknown")
            time.sleep(0.1)
            (tmp_path / f"done-{n}").touch()
            return n

        return run

    with pytest.raises(LookupError, match="connector 1 is unknown"):
        fanout.run_forked([job(n) for n in range(3)], at_once=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["done-0", "done-2"]


def test_a_helper_that_dies_without_an_answer_is_reported() -> None:
    def dies(_send: fanout.Send) -> None:
        os._exit(3)

    with pytest.raises(fanout.HelperDiedError, match="exit code 3"):
        fanout.run_forked([lambda _send: 1, dies])


def test_before_job_runs_in_each_helper_first(tmp_path: Path) -> None:
    marker = tmp_path / "before"

    def before() -> None:
        marker.write_text(str(os.getpid()))

    def job(_send: fanout.Send) -> str:
        return marker.read_text()

    [pid] = fanout.run_forked([job], before_job=before)
    assert int(pid) != os.getpid()


def test_a_helper_dies_when_the_sync_that_forked_it_is_killed(tmp_path: Path) -> None:
    """A sync killed with SIGKILL leaves no helper behind that could still write."""
    pid_file = tmp_path / "helper.pid"
    script = textwrap.dedent(
        f"""
        import os, time
        from hub.sync import fanout

        def job(_send):
            open({str(pid_file)!r}, "w").write(str(os.getpid()))
            time.sleep(120)

        fanout.run_forked([job])
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while not (pid_file.exists() and pid_file.read_text()):
            assert time.monotonic() < deadline, "the helper never started"
            assert parent.poll() is None, "the parent ended early"
            time.sleep(0.05)
        helper = int(pid_file.read_text())
        assert _alive(helper)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _alive(helper):
            assert time.monotonic() < deadline, "the helper outlived its parent"
            time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (dead, not yet reaped by init) is not alive
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_parent_runs_idle_again_and_again_while_a_helper_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sync renews its locks from `idle`: it must run while a long helper is busy, not
    # only when a helper sends something. The helper waits for the mark idle leaves on its
    # third call (and gives up after a minute, so a broken idle fails instead of hanging).
    monkeypatch.setattr(fanout, "IDLE_SECONDS", 0.01)
    mark = tmp_path / "idle-ran-three-times"
    calls = 0

    def idle() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            mark.touch()

    def job(_send: fanout.Send) -> bool:
        for _ in range(6000):
            if mark.exists():
                return True
            time.sleep(0.01)
        return False

    assert fanout.run_forked([job], idle=idle) == [True]


def test_what_idle_raises_stops_the_helpers_and_reaches_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fanout, "IDLE_SECONDS", 0.01)
    pid_file = tmp_path / "pid"

    def idle() -> None:
        if pid_file.exists():
            raise RuntimeError("lock lost")

    survived = tmp_path / "survived"

    def job(_send: fanout.Send) -> None:
        pid_file.write_text(str(os.getpid()))
        time.sleep(10)
        survived.touch()

    # The parent may have a SIGTERM handler of its own (the worker's sets a flag only):
    # the helper is ended all the same, not left to finish its job.
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    try:
        with pytest.raises(RuntimeError, match="lock lost"):
            fanout.run_forked([job], idle=idle)
    finally:
        signal.signal(signal.SIGTERM, previous)
    with pytest.raises(ProcessLookupError):  # ended and reaped, not left running
        os.kill(int(pid_file.read_text()), 0)
    assert not survived.exists(), "the helper was left to finish its job"
