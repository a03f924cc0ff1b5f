"""`evi web serve` warns on stderr when it would serve plain HTTP beyond this host."""

from __future__ import annotations

from typing import Any

import pytest

from hub.context import Hub


@pytest.mark.parametrize(
    ("host", "where"),
    [
        ("0.0.0.0", "every interface"),
        ("::", "every interface"),
        ("10.0.4.7", "10.0.4.7"),
        ("hub.kommun.example", "hub.kommun.example"),
    ],
)
def test_serving_beyond_loopback_warns_that_it_is_plain_http(
    hub: Hub, cli: Any, served: list[Any], host: str, where: str
) -> None:
    result = cli("web", "serve", "--host", host)
    assert result.code == 0, result.err
    [warning] = [line for line in result.err.splitlines() if line.startswith("warning:")]
    assert f"serves plain HTTP on {where}" in warning
    assert "TLS reverse proxy" in warning and "127.0.0.1" in warning
    assert "interface only the proxy reaches" in warning
    assert [c.host for c in served] == [host]  # a warning, not a refusal


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_serving_on_loopback_does_not_warn(
    hub: Hub, cli: Any, served: list[Any], host: str
) -> None:
    result = cli("web", "serve", "--host", host)
    assert result.code == 0, result.err
    assert "warning:" not in result.err and "plain HTTP" not in result.err
    assert cli("web", "serve").err.count("warning:") == 0  # the default, 127.0.0.1
