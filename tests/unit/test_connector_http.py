"""HTTP at the boundary: status codes and transport failures become the right error class,
messages never carry a body, query or credential, and credentials are added as flows."""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from hub.connector import (
    AuthorityError,
    ConnectorConfigError,
    InProcessTransport,
    JsonApi,
    RetryPolicy,
    TransientConnectorError,
    build_client,
)
from hub.connector.auth import BearerToken, ClientCredentials

NUMBER = "189001019802"  # a Skatteverket test number
TOKEN = "s3cret-token-value"


def api(handler: Callable[[httpx.Request], httpx.Response], **kw: object) -> JsonApi:
    client = build_client(
        "kommun",
        "https://kommun.example",
        timeout_seconds=5,
        transport=httpx.MockTransport(handler),
        **kw,  # type: ignore[arg-type]
    )
    return JsonApi("kommun", client, RetryPolicy(attempts=1))


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, ConnectorConfigError),
        (403, ConnectorConfigError),
        (404, ConnectorConfigError),
        (408, TransientConnectorError),
        (429, TransientConnectorError),
        (500, TransientConnectorError),
        (502, TransientConnectorError),
        (503, TransientConnectorError),
        (504, TransientConnectorError),
        (400, AuthorityError),
        (409, AuthorityError),
        (422, AuthorityError),
        (501, AuthorityError),
    ],
)
def test_each_status_is_classified(status: int, error: type[Exception]) -> None:
    body = json.dumps({"fel": f"personnummer {NUMBER} saknas"})
    jsonapi = api(lambda req: httpx.Response(status, text=body))
    with pytest.raises(error) as err:
        jsonapi.json("GET", "/handelser", params={"personnummer": NUMBER})
    message = str(err.value)
    assert message.startswith("kommun: ") and f"HTTP {status}" in message
    assert NUMBER not in message and "fel" not in message  # neither body nor query


def test_429_carries_its_retry_after() -> None:
    jsonapi = api(lambda req: httpx.Response(429, headers={"Retry-After": "12"}))
    with pytest.raises(TransientConnectorError) as err:
        jsonapi.request("GET", "/x")
    assert err.value.retry_after == 12


def test_malformed_json_is_an_authority_error() -> None:
    jsonapi = api(lambda req: httpx.Response(200, text='{"handelser": ['))
    with pytest.raises(AuthorityError, match="malformed JSON"):
        jsonapi.json("GET", "/handelser")


def _raise(exc: type[httpx.HTTPError]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("boom", request=request)  # type: ignore[call-arg]

    return handler


@pytest.mark.parametrize(
    ("exc", "error", "words"),
    [
        (httpx.ConnectError, TransientConnectorError, "cannot reach https://kommun.example"),
        (httpx.ReadTimeout, TransientConnectorError, "did not answer GET /x in time"),
        (httpx.ConnectTimeout, TransientConnectorError, "in time"),
        (httpx.RemoteProtocolError, TransientConnectorError, "closed the connection"),
        (httpx.ReadError, TransientConnectorError, "broke off GET /x"),
        (httpx.UnsupportedProtocol, ConnectorConfigError, "base_url"),
    ],
)
def test_transport_failures_are_classified(
    exc: type[httpx.HTTPError], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        api(_raise(exc)).request("GET", "/x")


def _tls_failure(reason: str, kind: type[ssl.SSLError] = ssl.SSLError) -> ssl.SSLError:
    error = kind(1, f"[SSL: {reason}] {reason.lower()}")
    error.reason = reason  # set by OpenSSL on real errors
    return error


@pytest.mark.parametrize(
    ("cause", "error", "words"),
    [
        # cut off mid-TLS (a server restarting, or closing a kept-alive connection just as
        # it is reused): retried, as any broken connection
        (
            _tls_failure("UNEXPECTED_EOF_WHILE_READING", ssl.SSLEOFError),
            TransientConnectorError,
            "cut the TLS connection off during GET /x",
        ),
        (
            _tls_failure("UNEXPECTED_EOF_WHILE_READING"),
            TransientConnectorError,
            "cut the TLS connection off",
        ),
        # the server said no: a configuration to fix, not retried
        (_tls_failure("TLSV1_ALERT_UNKNOWN_CA"), ConnectorConfigError, "check client_cert"),
        (
            _tls_failure("CERTIFICATE_VERIFY_FAILED", ssl.SSLCertVerificationError),
            ConnectorConfigError,
            "server certificate is not trusted",
        ),
    ],
)
def test_tls_failures_are_classified(
    cause: ssl.SSLError, error: type[Exception], words: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("tls", request=request) from cause

    with pytest.raises(error, match=words):
        api(handler).request("GET", "/x")


def test_bearer_token_is_sent_but_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(401)

    auth = BearerToken(SecretStr(TOKEN))
    jsonapi = api(handler, auth=auth)
    with pytest.raises(ConnectorConfigError) as err:
        jsonapi.request("GET", "/x")
    assert seen == [f"Bearer {TOKEN}"]
    for text in (str(err.value), repr(auth), repr(jsonapi.client), caplog.text):
        assert TOKEN not in text


class TokenServer:
    """An OAuth 2.0 token endpoint and an API that accepts the tokens it issued."""

    def __init__(self, secret: str = "right") -> None:
        self.secret = secret
        self.issued: list[str] = []
        self.revoked: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            basic = httpx.BasicAuth("hub", self.secret)
            expected = next(basic.auth_flow(httpx.Request("GET", "/"))).headers["Authorization"]
            if request.headers.get("Authorization") != expected:
                return httpx.Response(401, json={"error": "invalid_client"})
            assert b"grant_type=client_credentials" in request.content
            token = f"t{len(self.issued)}"
            self.issued.append(token)
            return httpx.Response(200, json={"access_token": token, "expires_in": 600})
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.issued or token in self.revoked:
            return httpx.Response(401)
        return httpx.Response(200, json={"ok": token})


def test_client_credentials_fetch_a_token_once_and_reuse_it() -> None:
    server = TokenServer()
    auth = ClientCredentials("af", "/oauth2/token", "hub", SecretStr("right"))
    jsonapi = api(server, auth=auth)
    assert [jsonapi.json("GET", "/x")["ok"] for _ in range(3)] == ["t0", "t0", "t0"]
    assert server.issued == ["t0"]


def test_client_credentials_renew_once_when_the_token_is_revoked() -> None:
    server = TokenServer()
    auth = ClientCredentials("af", "/oauth2/token", "hub", SecretStr("right"))
    jsonapi = api(server, auth=auth)
    jsonapi.json("GET", "/x")
    server.revoked.add("t0")
    assert jsonapi.json("GET", "/x") == {"ok": "t1"}


def test_client_credentials_renew_before_expiry() -> None:
    now = [1000.0]
    server = TokenServer()
    auth = ClientCredentials("af", "/oauth2/token", "hub", SecretStr("right"), clock=lambda: now[0])
    jsonapi = api(server, auth=auth)
    jsonapi.json("GET", "/x")
    now[0] += 600 - 10  # within the safety margin of the 600 s lifetime
    assert jsonapi.json("GET", "/x") == {"ok": "t1"}


def test_a_refused_client_secret_is_a_configuration_error_without_the_secret() -> None:
    server = TokenServer(secret="right")
    auth = ClientCredentials("af", "/oauth2/token", "hub", SecretStr("wrong-one"))
    with pytest.raises(ConnectorConfigError, match="client_secret") as err:
        api(server, auth=auth).request("GET", "/x")
    assert "wrong-one" not in str(err.value) and "wrong-one" not in repr(auth)


# -- the in-process transport ------------------------------------------------------------


def _app() -> FastAPI:
    import anyio

    app = FastAPI()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("bug in the app")

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        await anyio.sleep(30)
        return {"late": "yes"}

    @app.post("/echo")
    async def echo(body: dict[str, object]) -> dict[str, object]:
        return body

    return app


def test_in_process_transport_behaves_like_a_server() -> None:
    transport = InProcessTransport(_app())
    client = httpx.Client(transport=transport, base_url="http://app", timeout=1.0)
    with client:
        assert client.post("/echo", json={"a": 1}).json() == {"a": 1}
        # An exception in the app is a 500, as a real server would answer, not a crash here.
        assert client.get("/boom").status_code == 500
        # The read timeout is enforced even though no socket is involved.
        with pytest.raises(httpx.ReadTimeout):
            client.get("/slow")
