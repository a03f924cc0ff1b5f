"""Connectors over real HTTP: sandboxes served by `evi sandbox serve` in their own process,
driven by the real `evi` command. No secret appears in any output."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.connector import RetryPolicy, TransientConnectorError, service
from hub.context import open_hub
from hub.model.identity import parse_identity
from hub.settings import get_settings

pytestmark = pytest.mark.slow
SECRET = "kommun-sandbox-token"
SEED, PEOPLE = 3, 50


class Env:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.vars = {k: v for k, v in os.environ.items() if not k.startswith("EVI_")}
        self.vars["EVI_HOME"] = str(home)
        self.outputs: list[str] = []

    def evi(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "hub", *args],
            env=self.vars,
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.outputs += [done.stdout, done.stderr]
        return done


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    home = tmp_path / "home"
    for key in list(os.environ):
        if key.startswith("EVI_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("EVI_HOME", str(home))
    get_settings.cache_clear()
    e = Env(home)
    assert e.evi("db", "upgrade").returncode == 0
    yield e
    get_settings.cache_clear()
    for text in e.outputs:
        assert SECRET not in text and "af-sandbox-secret" not in text


@pytest.fixture
def serve(env: Env) -> Iterator[Callable[..., Any]]:
    started: list[subprocess.Popen[str]] = []

    def start(name: str, *extra: str, tls: bool = False) -> tuple[str, subprocess.Popen[str]]:
        port = free_port()
        server = subprocess.Popen(
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
                str(SEED),
                "--population",
                str(PEOPLE),
                *extra,
            ],
            env=env.vars,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(server)
        url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        tls_dir = env.home / "sandbox" / "tls"

        def probe_context() -> Any:
            # The server writes the test certificates when it starts.
            if not tls:
                return True
            context = ssl.create_default_context(cafile=str(tls_dir / "ca.pem"))
            context.load_cert_chain(tls_dir / "client.pem", tls_dir / "client-key.pem")
            return context

        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                with httpx.Client(verify=probe_context(), timeout=1) as probe:
                    if probe.get(url + "/_sandbox/info").status_code == 200:
                        return url, server
            except (httpx.TransportError, OSError):
                pass
            assert time.monotonic() < deadline, f"sandbox {name} did not start"
            time.sleep(0.1)

    yield start
    for server in started:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=10)


def test_check_succeeds_against_a_running_sandbox_and_fails_in_one_line_when_it_stops(
    env: Env, serve: Callable[..., Any]
) -> None:
    url, server = serve("kommun")
    assert env.evi("sandbox", "connect", "kommun", "--url", url).returncode == 0
    ok = env.evi("connectors", "check", "kommun")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("kommun: ok")

    server.terminate()
    server.wait(timeout=10)
    down = env.evi("connectors", "check", "kommun")
    assert down.returncode == 75
    assert down.stderr.count("\n") == 1 and "Traceback" not in down.stderr
    assert down.stderr.startswith(f"error: kommun: cannot reach {url}")


def test_a_pull_over_http_survives_rate_limits_and_a_timeout(
    env: Env, serve: Callable[..., Any]
) -> None:
    url, _ = serve("kommun")
    env.evi("sandbox", "connect", "kommun", "--url", url)
    env.evi(
        "connectors", "configure", "kommun", "--set", "page_size=7", "--set", "timeout_seconds=1"
    )
    hub = open_hub()
    waits: list[float] = []
    numbers = httpx.get(url + "/_sandbox/people", params={"limit": 5}).json()["items"]
    followed = [parse_identity(p["number"]) for p in numbers]
    try:
        retry = RetryPolicy(attempts=4, sleep=waits.append)
        with service.build_connector(hub, "kommun", retry=retry) as connector:
            for person in followed:
                connector.subscribe(person)
            clean = [r.source_id for r in connector.pull(None, followed)]
            assert len(clean) == 5 * 3

            knobs = {"rate_limit_rate": 1.0, "retry_after_seconds": 2, "fault_budget": 2}
            httpx.patch(url + "/_sandbox/knobs", json=knobs).raise_for_status()
            assert [r.source_id for r in connector.pull(None, followed)] == clean
            assert waits == [2.0, 2.0]

            stall = {"timeout_rate": 1.0, "stall_seconds": 3.0, "fault_budget": 1}
            httpx.patch(url + "/_sandbox/knobs", json=stall).raise_for_status()
            assert [r.source_id for r in connector.pull(None, followed)] == clean
            assert len(waits) == 3

            httpx.patch(url + "/_sandbox/knobs", json={"fail_rate": 1.0, "fault_budget": None})
            with pytest.raises(TransientConnectorError, match="tried 4 times in a row"):
                list(connector.pull(None, followed))
    finally:
        hub.close()


def test_mtls_sandbox_accepts_our_certificate_and_refuses_a_client_without_one(
    env: Env, serve: Callable[..., Any]
) -> None:
    url, _ = serve("fk", tls=True)
    assert env.evi("sandbox", "connect", "fk", "--url", url).returncode == 0
    ok = env.evi("connectors", "check", "fk")
    assert ok.returncode == 0, ok.stderr

    ca = ssl.create_default_context(cafile=str(env.home / "sandbox" / "tls" / "ca.pem"))
    with pytest.raises(httpx.TransportError):  # the TLS layer refuses, not the app
        httpx.get(url + "/samverkan/api/v1/ping", verify=ca, timeout=5)

    # Present a certificate the authority did not issue: the check fails in one line.
    foreign = env.home / "foreign"
    from connectors.sandbox_kit.tls import ensure_test_pki

    other = ensure_test_pki(foreign)
    env.evi(
        "connectors",
        "configure",
        "fk",
        "--set",
        f"client_cert={other.client_cert}",
        "--set",
        f"client_key={other.client_key}",
    )
    refused = env.evi("connectors", "check", "fk")
    assert refused.returncode != 0
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "client certificate" in refused.stderr
