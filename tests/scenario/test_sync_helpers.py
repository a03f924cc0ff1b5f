"""A night spread over helper processes does exactly what one process does.

Two homes with the same caseload, each with its own sandbox authorities served over
HTTP(S): one synced by `evi sync` in a single process (``EVI_SYNC__HELPERS=0``), one with
helper processes (one connector's pull each, then the deliveries split by person). They
must store the same records, deliver the same transfers under the same idempotency keys,
log the same decisions, and both ledgers must verify.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from served import Sandboxes, evi, evi_env

pytestmark = pytest.mark.slow

SEED, POPULATION = 21, 40


def _night(home: Path, helpers: str) -> tuple[Sandboxes, dict[str, dict[str, Any]]]:
    sandboxes = Sandboxes(home, seed=SEED, population=POPULATION)
    env = evi_env(home, EVI_SYNC__HELPERS=helpers)
    sandboxes.setup_demo(env)
    done = evi(env, "sync", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    verified = evi(env, "log", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(done.stdout)
    return sandboxes, {r["connector"]: r for r in report["connectors"]}


def _stored(home: Path) -> set[tuple[str, str, str]]:
    with sqlite3.connect(home / "evi.db") as db:
        return set(db.execute("SELECT source, source_id, payload_sha256 FROM record"))


def _decisions(home: Path) -> dict[tuple[str, str, str], int]:
    with sqlite3.connect(home / "evi.db") as db:
        rows = db.execute(
            "SELECT origin, recipient, decision, COUNT(*) FROM ledger_entry "
            "WHERE action = 'decision' GROUP BY origin, recipient, decision"
        ).fetchall()
    return {(o, r, d): n for o, r, d, n in rows}


def test_a_night_with_helper_processes_does_what_one_process_does(tmp_path: Path) -> None:
    one_home, many_home = tmp_path / "one", tmp_path / "many"
    one, one_report = _night(one_home, "0")
    try:
        many, many_report = _night(many_home, "2")
        try:
            counted = ("pulled", "stored", "refused", "queued", "delivered", "denied")
            for name, entry in one_report.items():
                assert {k: many_report[name][k] for k in counted} == {
                    k: entry[k] for k in counted
                }, name
            assert sum(e["delivered"] for e in many_report.values()) > 0
            assert many.received_keys() == one.received_keys()
            assert all(many.received(n)["duplicates"] == 0 for n in many.urls)
            assert _stored(many_home) == _stored(one_home)
            assert _decisions(many_home) == _decisions(one_home)
        finally:
            many.stop()
    finally:
        one.stop()


def test_with_helpers_an_authority_that_is_down_fails_alone_and_loses_nothing(
    tmp_path: Path,
) -> None:
    home = tmp_path / "down"
    sandboxes, first = _night(home, "2")
    try:
        assert all(entry["status"] == "ok" for entry in first.values())
        sandboxes.advance()
        sandboxes.stop_one("af")
        env = evi_env(home, EVI_SYNC__HELPERS="2")
        done = evi(env, "sync", "--json")
        assert done.returncode == 1, done.stdout + done.stderr
        report = {r["connector"]: r for r in json.loads(done.stdout)["connectors"]}
        assert report["af"]["status"] == "failed" and report["af"]["error"]
        for name in ("fk", "kommun", "region"):
            assert report[name]["status"] == "ok", report[name]
            assert report[name]["pulled"] > 0
        assert sum(report[n]["delivered"] for n in ("fk", "kommun", "region")) > 0
        with sqlite3.connect(home / "evi.db") as db:
            to_af = dict(
                db.execute(
                    "SELECT status, COUNT(*) FROM outbox WHERE recipient = 'af' GROUP BY status"
                ).fetchall()
            )
            others_pending = db.execute(
                "SELECT COUNT(*) FROM outbox WHERE recipient != 'af' AND status = 'pending'"
            ).fetchone()[0]
        assert to_af.get("pending", 0) > 0, "nothing was queued for the authority that is down"
        assert to_af.get("dead", 0) == 0, "a transfer to an authority that is down was given up"
        assert others_pending == 0
        verified = evi(env, "log", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        sandboxes.stop()
