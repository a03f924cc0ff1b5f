"""For bench/sync.py: the four sandbox authorities served over loopback, and measured children.

Each sandbox is `evi sandbox serve` in its own process (uvicorn on 127.0.0.1; fk and region
over HTTPS with a required client certificate), sharing the bench's ``$EVI_HOME`` so that
the test certificates the hub and dlt present are the ones the servers trust. Every process
started here is stopped by its pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

AUTHORITIES = ("kommun", "af", "fk", "region")
TLS = frozenset({"fk", "region"})


def bench_env() -> dict[str, str]:
    """This environment as an installed program sees it: Python's bytecode caches on.

    ``PYTHONDONTWRITEBYTECODE`` (set in some shells and containers) would make every child
    compile the project's own modules again at each start (an editable install has no
    ``.pyc`` files until a first run writes them; pip compiles an installed wheel, and
    dlt.s); measured here, a few tenths of a second more for every `evi` command.
    """
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def evi_env(home: Path) -> dict[str, str]:
    """The environment of every `evi` child: this home, no stray ``EVI_*`` settings."""
    env = {k: v for k, v in bench_env().items() if not k.startswith("EVI_")}
    env["EVI_HOME"] = str(home)
    return env


def evi(home: Path, *args: str, timeout: float = 600) -> str:
    """Run ``evi ARGS`` to completion; returns stdout, raises with stderr on failure."""
    done = subprocess.run(
        [sys.executable, "-m", "hub", *args],
        env=evi_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"evi {' '.join(args[:2])} failed ({done.returncode}): {done.stderr}")
    return done.stdout


@dataclass(frozen=True)
class Measured:
    """What a child process cost: wall time and memory.

    ``peak_rss_mb`` is the child's ``ru_maxrss`` from ``wait4``: the largest resident set
    of any one process of its tree. ``peak_tree_mb`` is the largest sum of the resident
    sets of the child and all its descendants at one moment, sampled every 50 ms (shared
    pages are counted once per process, so this overstates a forking child a little).
    """

    returncode: int
    seconds: float
    peak_rss_mb: float
    peak_tree_mb: float
    stdout: str


def run_measured(args: list[str], env: dict[str, str], *, timeout: float, log: Path) -> Measured:
    """Run a child and measure it with ``wait4`` (its own rusage, not the bench's).

    Its stdout is returned, its stderr goes to ``log``; past ``timeout`` it is killed.
    """
    out_path = log.with_suffix(".out")
    with log.open("w") as err, out_path.open("w") as out:
        started = time.perf_counter()
        child = subprocess.Popen(args, env=env, stdout=out, stderr=err)
        timer = threading.Timer(timeout, child.kill)
        timer.start()
        done = threading.Event()
        tree = TreeMemory(child.pid, done)
        tree.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            timer.cancel()
            done.set()
            tree.join()
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
    # Linux reports ru_maxrss in kilobytes.
    return Measured(
        child.returncode,
        seconds,
        usage.ru_maxrss / 1024,
        tree.peak / 1024 / 1024,
        out_path.read_text(encoding="utf-8"),
    )


class TreeMemory(threading.Thread):
    """Samples the summed RSS of a process and its descendants until ``done``."""

    def __init__(self, pid: int, done: threading.Event) -> None:
        super().__init__(daemon=True)
        self.pid, self.done, self.peak = pid, done, 0

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self.done.wait(0.05):
            total = 0
            try:
                processes = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for process in processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += process.memory_info().rss
            self.peak = max(self.peak, total)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tls_files(home: Path) -> dict[str, str]:
    """The test client certificate, its key and the test CA (made by the first mTLS server)."""
    tls = home / "sandbox" / "tls"
    return {
        "cert": str(tls / "client.pem"),
        "key": str(tls / "client-key.pem"),
        "ca": str(tls / "ca.pem"),
    }


class Sandboxes:
    """The four authorities for one ``$EVI_HOME``, started with the same seed and size."""

    def __init__(
        self,
        home: Path,
        *,
        seed: int,
        population: int,
        records_per_person: int,
        latency_ms: int,
        logs: Path,
        all_subscribed: bool = True,
    ) -> None:
        """``all_subscribed``: answer about everyone (bench/sync.py); without it each
        sandbox keeps the list of people the hub registered (bench/city.py)."""
        self.home = home
        self.urls: dict[str, str] = {}
        self._servers: dict[str, subprocess.Popen[bytes]] = {}
        self._all_subscribed = all_subscribed
        try:
            self._start(seed, population, records_per_person, latency_ms, logs)
        except BaseException:
            self.stop()
            raise

    def _start(
        self, seed: int, population: int, records_per_person: int, latency_ms: int, logs: Path
    ) -> None:
        home = self.home
        for name in AUTHORITIES:  # fk and region share one test PKI, created atomically
            port = free_port()
            with (logs / f"sandbox-{name}.log").open("w") as log:
                self._servers[name] = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "hub",
                        "sandbox",
                        "serve",
                        name,
                        "--port",
                        str(port),
                        "--seed",
                        str(seed),
                        "--population",
                        str(population),
                        "--records-per-person",
                        str(records_per_person),
                        "--latency-ms",
                        str(latency_ms),
                        *(["--all-subscribed"] if self._all_subscribed else []),
                        "--fresh",
                    ],
                    env=evi_env(home),
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            self.urls[name] = f"{'https' if name in TLS else 'http'}://127.0.0.1:{port}"
        for name in AUTHORITIES:
            self._wait(name)

    def client(self, name: str, timeout: float = 60) -> httpx.Client:
        """A client for the sandbox's own ``/_sandbox`` bench endpoints."""
        verify: Any = True
        if name in TLS:
            files = tls_files(self.home)
            verify = ssl.create_default_context(cafile=files["ca"])
            verify.load_cert_chain(files["cert"], files["key"])
        return httpx.Client(base_url=self.urls[name], verify=verify, timeout=timeout)

    def _wait(self, name: str) -> None:
        deadline = time.monotonic() + 120
        server = self._servers[name]
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"sandbox {name} exited with {server.returncode}; see its log")
            try:
                with self.client(name, timeout=5) as client:
                    if client.get("/_sandbox/info").status_code == 200:
                        return
            except (httpx.TransportError, OSError, ssl.SSLError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"sandbox {name} did not answer within 120 s")
            time.sleep(0.2)

    def people(self, name: str = "kommun") -> list[dict[str, Any]]:
        """The population (identical in every sandbox with the same seed)."""
        items: list[dict[str, Any]] = []
        with self.client(name) as client:
            while True:
                page = {"offset": len(items), "limit": 10_000}
                answer = client.get("/_sandbox/people", params=page)
                answer.raise_for_status()
                data = answer.json()
                items.extend(data["items"])
                if not data["items"] or len(items) >= data["total"]:
                    return items

    def knobs(self, **changes: Any) -> None:
        for name in AUTHORITIES:
            with self.client(name) as client:
                client.patch("/_sandbox/knobs", json=changes).raise_for_status()

    def advance(self, rounds: int) -> None:
        """Time passes at every authority: each person gets ``rounds`` new records."""
        for name in AUTHORITIES:
            with self.client(name) as client:
                left = rounds
                while left > 0:
                    step = min(left, 1000)
                    client.post("/_sandbox/advance", json={"rounds": step}).raise_for_status()
                    left -= step

    def info(self) -> dict[str, Any]:
        out = {}
        for name in AUTHORITIES:
            with self.client(name) as client:
                out[name] = client.get("/_sandbox/info").json()
        return out

    def received(self) -> int:
        total = 0
        for name in AUTHORITIES:
            with self.client(name) as client:
                total += int(client.get("/_sandbox/received", params={"limit": 0}).json()["unique"])
        return total

    def stop(self) -> None:
        for server in self._servers.values():
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
        for server in self._servers.values():
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=15)

    def __enter__(self) -> Sandboxes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path
