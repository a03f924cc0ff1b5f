"""A third-party connector installed from its own package is listed and used, with no
change to hub/: tests/example_connector is built and installed the way a user would, into a
directory of its own, and the real `evi` command runs on top of it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

EXAMPLE = Path(__file__).parents[1] / "example_connector"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package installed into a directory of its own (no network)."""
    source = tmp_path_factory.mktemp("src") / "example_connector"
    shutil.copytree(EXAMPLE, source)
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    assert (target / "evi_komvux" / "komvux.toml").is_file()  # package data came along
    return target


@pytest.fixture
def env(site: Path, tmp_path: Path) -> dict[str, str]:
    variables = {k: v for k, v in os.environ.items() if not k.startswith("EVI_")}
    variables["PYTHONPATH"] = str(site)
    variables["EVI_HOME"] = str(tmp_path / "home")
    return variables


def evi(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub", *args], env=env, capture_output=True, text=True, timeout=60
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def komvux_sandbox(env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hub",
            "sandbox",
            "serve",
            "komvux",
            "--port",
            str(port),
            "--population",
            "20",
            "--records-per-person",
            "1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                if httpx.get(url + "/_sandbox/info", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the example sandbox did not start"
            time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_installed_connector_is_listed_with_its_own_version(env: dict[str, str]) -> None:
    assert evi(env, "db", "upgrade").returncode == 0
    listed = evi(env, "connectors", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["komvux"]["version"] == "0.3.0"
    assert rows["komvux"]["plugin"] == "komvux"
    assert rows["komvux"]["authority"] == "Komvux (kommunal vuxenutbildning)"
    plugins = {row["name"]: row for row in json.loads(evi(env, "plugins", "list", "--json").stdout)}
    assert plugins["komvux"]["source"] == "evi-connector-komvux"
    assert plugins["komvux"]["hooks"] == ["evi_register_connectors"]


def test_the_allowlist_can_leave_the_installed_connector_out(env: dict[str, str]) -> None:
    evi(env, "db", "upgrade")
    rows = json.loads(evi({**env, "EVI_PLUGINS": "kommun"}, "connectors", "list", "--json").stdout)
    assert [row["name"] for row in rows] == ["kommun"]


def test_the_installed_connector_is_configured_checked_and_pulled_like_a_built_in(
    env: dict[str, str], komvux_sandbox: str
) -> None:
    assert evi(env, "db", "upgrade").returncode == 0
    connect = evi(env, "sandbox", "connect", "komvux", "--url", komvux_sandbox)
    assert connect.returncode == 0, connect.stderr
    check = evi(env, "connectors", "check", "komvux")
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith("komvux: ok")
    # Pull and map through the hub's own service, as the sync job does.
    script = (
        "import json\n"
        "from hub.context import open_hub\n"
        "from hub.connector import service\n"
        "with service.build_connector(open_hub(), 'komvux') as c:\n"
        "    records = [c.map(n) for n in c.pull(None, [])]\n"
        "print(json.dumps([r.model_dump(mode='json') for r in records]))\n"
    )
    pulled = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert pulled.returncode == 0, pulled.stderr
    records = json.loads(pulled.stdout)
    assert len(records) == 20
    assert {r["body"]["type"] for r in records} <= {"utbildning", "studie_och_yrkesvagledning"}
    assert all(r["unmapped"] == [] and r["mapping_version"] == "1" for r in records)
    for output in (connect, check, pulled):
        assert "komvux-sandbox-token" not in output.stdout + output.stderr
