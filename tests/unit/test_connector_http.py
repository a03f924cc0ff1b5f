"""HTTP at the boundary: status codes and transport failures become the right error class,
messages never carry a body, query or credential, and credentials are added as flows."""

from __future__ import annotations

import gzip
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from connectors.af.connector import AfConnector
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
from hub.connector.errors import UnusableAnswerError

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
    if status in (401, 403):  # a secret is set from the environment, not the command line
        assert "--secret-from-env KEY=ENV_VAR" in message and "--set" not in message


def test_429_carries_its_retry_after() -> None:
    jsonapi = api(lambda req: httpx.Response(429, headers={"Retry-After": "12"}))
    with pytest.raises(TransientConnectorError) as err:
        jsonapi.request("GET", "/x")
    assert err.value.retry_after == 12


def test_409_to_a_keyed_push_is_its_key_still_in_flight_not_a_refusal() -> None:
    """Before: an AuthorityError, and the transfer a dead letter, though the authority's
    first request with that key goes on to store it (IETF Idempotency-Key draft)."""
    jsonapi = api(lambda req: httpx.Response(409, headers={"Retry-After": "7"}))
    with pytest.raises(TransientConnectorError, match="same idempotency key") as err:
        jsonapi.request("POST", "/meddelanden", json_body={}, headers={"Idempotency-Key": "k" * 20})
    assert err.value.retry_after == 7
    with pytest.raises(AuthorityError, match="HTTP 409"):  # unkeyed: still a refusal
        jsonapi.request("POST", "/bevakning", json_body={})


def _answer(body: bytes | str, content_type: str | None = "application/json") -> httpx.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    content = body.encode() if isinstance(body, str) else body
    return httpx.Response(200, headers=headers, content=content)


def test_malformed_json_is_an_authority_error() -> None:
    jsonapi = api(lambda req: _answer('{"handelser": ['))
    with pytest.raises(AuthorityError, match="malformed JSON"):
        jsonapi.json("GET", "/handelser")


@pytest.mark.parametrize(
    "body",
    [
        "[" * 10_000,  # nested deeper than the decoder follows: RecursionError before
        '{"a": ' * 5_000 + "1" + "}" * 5_000,
        "1" * 5_000,  # a number too long to convert (ValueError, not JSONDecodeError)
        b'{"namn": "\xff\xfe"}',  # not UTF-8
    ],
)
def test_an_answer_json_cannot_decode_is_an_unusable_answer_naming_the_path(
    body: str | bytes,
) -> None:
    jsonapi = api(lambda req: _answer(body))
    with pytest.raises(UnusableAnswerError) as err:
        jsonapi.json("GET", "/handelser", params={"personnummer": NUMBER})
    message = str(err.value)
    assert isinstance(err.value, AuthorityError)  # not retried, one line, exit 1
    assert "GET /handelser" in message and "malformed JSON" in message
    assert NUMBER not in message and "[[" not in message and "111" not in message


@pytest.mark.parametrize(
    ("content_type", "shown"),
    [
        ("text/html; charset=utf-8", "text/html"),
        ("text/plain", "text/plain"),
        (None, "no content type"),
        ("x" * 200, "another content type"),
    ],
)
def test_an_answer_without_a_json_content_type_is_refused(
    content_type: str | None, shown: str
) -> None:
    jsonapi = api(lambda req: _answer('{"ok": true}', content_type))
    with pytest.raises(UnusableAnswerError, match=f"GET /x with {shown} instead of JSON"):
        jsonapi.json("GET", "/x")


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/problem+json"],
)
def test_json_content_types_are_accepted(content_type: str) -> None:
    assert api(lambda req: _answer('{"ok": true}', content_type)).json("GET", "/x") == {"ok": True}


def test_the_response_returned_has_its_body_and_headers() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"Idempotent-Replayed": "true", "Content-Type": "application/json"}
        return httpx.Response(201, headers=headers, json={"meddelandeId": "m-1"})

    response = api(handler).request("POST", "/meddelanden", json_body={"a": 1})
    assert response.status_code == 201 and response.json() == {"meddelandeId": "m-1"}
    assert response.headers["Idempotent-Replayed"] == "true"


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

    def __init__(self, secret: str = "right", *, delay: float = 0.0) -> None:
        self.secret = secret
        self.delay = delay  # how long issuing a token takes
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            basic = httpx.BasicAuth("hub", self.secret)
            expected = next(basic.auth_flow(httpx.Request("GET", "/"))).headers["Authorization"]
            if request.headers.get("Authorization") != expected:
                return httpx.Response(401, json={"error": "invalid_client"})
            assert b"grant_type=client_credentials" in request.content
            time.sleep(self.delay)
            with self.lock:
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


def _together(jsonapi: JsonApi, n: int) -> list[str]:
    """``n`` requests started at the same moment from ``n`` threads; their tokens."""
    start = threading.Barrier(n)

    def one(_: int) -> str:
        start.wait()
        return str(jsonapi.json("GET", "/x")["ok"])

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_requests_made_together_wait_for_one_token() -> None:
    """Before: each request that found no token fetched its own (8 at once were seen)."""
    server = TokenServer(delay=0.05)
    jsonapi = api(server, auth=ClientCredentials("af", "/oauth2/token", "hub", SecretStr("right")))
    assert _together(jsonapi, 8) == ["t0"] * 8
    assert server.issued == ["t0"]


def test_requests_refused_together_renew_the_token_once() -> None:
    server = TokenServer(delay=0.05)
    jsonapi = api(server, auth=ClientCredentials("af", "/oauth2/token", "hub", SecretStr("right")))
    jsonapi.json("GET", "/x")
    server.revoked.add("t0")
    assert _together(jsonapi, 8) == ["t1"] * 8
    assert server.issued == ["t0", "t1"]


def _token_answer(response: httpx.Response) -> JsonApi:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            return response
        return httpx.Response(200, json={"ok": True})

    return api(handler, auth=ClientCredentials("af", "/oauth2/token", "hub", SecretStr("s")))


@pytest.mark.parametrize(
    ("response", "why"),
    [
        (httpx.Response(200, text='{"access_token": "t"}'), "not JSON"),
        (
            httpx.Response(
                200,
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
                content=gzip.compress(b'{"access_token": "t"}'),
            ),
            "compressed",
        ),
        (httpx.Response(200, json={"access_token": "x" * 70_000}), "too large"),
        (httpx.Response(200, json={"access_token": "tökén"}), "not a token"),
        (httpx.Response(200, json={"access_token": "a\r\nX-Evil: 1"}), "not a token"),
        (httpx.Response(200, json={"access_token": 17}), "not a token"),
        (_answer('{"access_token": "t", "expires_in": Infinity}'), "expires_in"),
        (_answer("[" * 10_000), "malformed"),
    ],
)
def test_an_unusable_token_answer_is_an_authority_error(response: httpx.Response, why: str) -> None:
    """Before: a non-ASCII token escaped as UnicodeEncodeError, a deep one as
    RecursionError; ``Infinity`` was kept as a token that never expires."""
    with pytest.raises(AuthorityError, match=f"without a usable access_token \\({why}"):
        _token_answer(response).json("GET", "/x")


class Endless(httpx.SyncByteStream):
    """A body that goes on (up to ``chunks`` chunks of 64 KiB), counting what was read."""

    def __init__(self, chunks: int = 1024, chunk: bytes = b"x" * 65536) -> None:
        self.chunks = chunks
        self.chunk = chunk
        self.read = 0

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(self.chunks):
            self.read += 1
            yield self.chunk


def test_a_streamed_token_answer_is_cut_off_at_its_limit() -> None:
    body = Endless()
    answer = httpx.Response(200, headers={"Content-Type": "application/json"}, stream=body)
    with pytest.raises(AuthorityError, match="too large"):
        _token_answer(answer).json("GET", "/x")
    assert body.read == 2  # 128 KiB read, of 64 MiB offered


def test_the_body_of_a_refusal_that_renews_the_token_is_not_read() -> None:
    """Before: the flow asked httpx to read every answer whole, 401s and API pages alike."""
    server = TokenServer()
    bodies: list[Endless] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") == "Bearer t0":
            bodies.append(Endless())
            return httpx.Response(401, stream=bodies[-1])
        return server(request)

    auth = ClientCredentials("af", "/oauth2/token", "hub", SecretStr("right"))
    assert api(handler, auth=auth).json("GET", "/x") == {"ok": "t1"}
    assert [b.read for b in bodies] == [0]


# -- https, or http to this machine only -------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://kommun.example",
        "http://10.0.0.5:8080",
        "http://0.0.0.0:8701",
        "http://127.0.0.1.nip.io",
        "http://localhost.example",
    ],
)
def test_plain_http_over_the_network_is_refused(url: str) -> None:
    """Before: accepted without a word; the token went out unencrypted."""
    with pytest.raises(ConnectorConfigError, match="is plain http") as err:
        build_client("kommun", url, timeout_seconds=5, auth=BearerToken(SecretStr(TOKEN)))
    assert "`evi connectors configure kommun --set base_url=https://…`" in str(err.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://kommun.example",
        "http://127.0.0.1:8701",
        "http://127.8.9.10:8701",
        "http://localhost:8701",
        "http://[::1]:8701",
    ],
)
def test_https_and_http_to_this_machine_are_accepted(url: str) -> None:
    build_client("kommun", url, timeout_seconds=5).close()


def test_a_transport_instead_of_the_network_takes_any_url() -> None:
    transport = httpx.MockTransport(lambda req: httpx.Response(200))
    build_client("kommun", "http://kommun.sandbox.invalid", timeout_seconds=5, transport=transport)


def test_an_oauth_token_url_must_be_https_too() -> None:
    auth = ClientCredentials("af", "http://login.example/token", "hub", SecretStr("s"))
    with pytest.raises(ConnectorConfigError, match=r"token_url http://login\.example is plain"):
        build_client("af", "https://af.example", timeout_seconds=5, auth=auth)
    relative = ClientCredentials("af", "/oauth2/token", "hub", SecretStr("s"))
    build_client("af", "https://af.example", timeout_seconds=5, auth=relative).close()
    with pytest.raises(ConnectorConfigError, match=r"base_url http://af\.example is plain"):
        build_client("af", "http://af.example", timeout_seconds=5, auth=relative)


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


@pytest.mark.parametrize(
    ("base_url", "token_url", "asked"),
    [
        ("https://af.example/api", "/oauth2/token", "https://af.example/api/oauth2/token"),
        ("https://af.example/api/", "oauth2/token", "https://af.example/api/oauth2/token"),
        ("https://af.example", "/oauth2/token", "https://af.example/oauth2/token"),
        ("https://af.example/api", "https://login.example/t", "https://login.example/t"),
    ],
)
def test_the_af_token_url_is_placed_under_base_url_like_the_apis_paths(
    base_url: str, token_url: str, asked: str
) -> None:
    """Before: resolved against each request's URL, so `/oauth2/token` under
    https://af.example/api lost the `/api` and `oauth2/token` went under the events path."""
    seen: list[str] = []

    def authority(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.method == "POST":
            return httpx.Response(200, json={"access_token": "t0", "expires_in": 600})
        return httpx.Response(200, json={"ok": True})

    options = AfConnector.Options(
        base_url=base_url, client_id="hub", client_secret=SecretStr("s"), token_url=token_url
    )
    with AfConnector.build_client(options, transport=httpx.MockTransport(authority)) as client:
        client.get("/participants/v1/health")
    assert seen == [asked, base_url.rstrip("/") + "/participants/v1/health"]
