"""Sandbox authorities served over real HTTP (and HTTPS with mTLS) by `evi sandbox serve`,
each in its own process, and the `evi` command run as a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

AUTHORITIES = ("af", "fk", "kommun", "region")
TLS = frozenset({"fk", "region"})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def evi_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVI_")}
    env["EVI_HOME"] = str(home)
    env.update(extra)
    return env


def evi(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def evi_process(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hub", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


class Sandboxes:
    """The four authorities served for one ``$EVI_HOME`` (their state lives under it)."""

    def __init__(self, home: Path, *, seed: int, population: int, latency_ms: int = 0) -> None:
        self.home = home
        self.seed, self.population = seed, population
        self.env = evi_env(home)
        self.urls: dict[str, str] = {}
        self._servers: list[subprocess.Popen[str]] = []
        for name in AUTHORITIES:
            port = free_port()
            server = evi_process(
                self.env,
                "sandbox",
                "serve",
                name,
                "--port",
                str(port),
                "--seed",
                str(seed),
                "--population",
                str(population),
                "--latency-ms",
                str(latency_ms),
            )
            self._servers.append(server)
            scheme = "https" if name in TLS else "http"
            self.urls[name] = f"{scheme}://127.0.0.1:{port}"
        for name, server in zip(AUTHORITIES, self._servers, strict=True):
            self._wait(name, server)

    def _client(self, name: str) -> httpx.Client:
        verify: Any = True
        if name in TLS:
            tls = self.home / "sandbox" / "tls"
            verify = ssl.create_default_context(cafile=str(tls / "ca.pem"))
            verify.load_cert_chain(tls / "client.pem", tls / "client-key.pem")
        return httpx.Client(base_url=self.urls[name], verify=verify, timeout=10)

    def _wait(self, name: str, server: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else name
            try:
                with self._client(name) as client:
                    if client.get("/_sandbox/info").status_code == 200:
                        return
            except (httpx.TransportError, OSError, ssl.SSLError):
                pass
            assert time.monotonic() < deadline, f"sandbox {name} did not start"
            time.sleep(0.1)

    def setup_demo(self, env: dict[str, str]) -> None:
        """`evi demo --setup-only` with this population, every authority reached over HTTP."""
        setup = evi(
            env,
            "demo",
            "--setup-only",
            "--seed",
            str(self.seed),
            "--population",
            str(self.population),
            *self.url_args(),
        )
        assert setup.returncode == 0, setup.stderr

    def url_args(self) -> list[str]:
        args = []
        for name, url in self.urls.items():
            args += ["--sandbox-url", f"{name}={url}"]
        return args

    def received(self, name: str) -> dict[str, Any]:
        with self._client(name) as client:
            answer = client.get("/_sandbox/received")
            answer.raise_for_status()
            data: dict[str, Any] = answer.json()
            return data

    def people(self) -> list[dict[str, Any]]:
        with self._client("kommun") as client:
            answer = client.get("/_sandbox/people", params={"limit": 10_000})
            answer.raise_for_status()
            items: list[dict[str, Any]] = answer.json()["items"]
            return items

    def received_keys(self) -> dict[str, set[str]]:
        return {n: {i["idempotency_key"] for i in self.received(n)["items"]} for n in AUTHORITIES}

    def advance(self, rounds: int = 1) -> None:
        """A night passes at every authority: each person gets ``rounds`` new records."""
        for name in AUTHORITIES:
            with self._client(name) as client:
                client.post("/_sandbox/advance", json={"rounds": rounds}).raise_for_status()

    def stop_one(self, name: str) -> None:
        """Take one authority's service down (connections to it are refused from now)."""
        server = self._servers[AUTHORITIES.index(name)]
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)

    def stop(self) -> None:
        for server in self._servers:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
        for server in self._servers:
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
