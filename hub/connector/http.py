"""HTTP for connectors: httpx clients with timeouts, errors classified at the boundary.

Every request a connector makes goes through :class:`JsonApi`, which

* translates httpx's exceptions and the authority's status codes into the three
  connector errors (``raise … from None`` so no request, header or body rides along in a
  traceback);
* retries transient failures with :class:`~hub.connector.retry.RetryPolicy`,
  honouring ``Retry-After``;
* refuses malformed JSON as an :class:`AuthorityError`.

Messages name the method and path, never the query string or body (they may carry
personal data) and never a header (they carry credentials).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from hub import __version__
from hub.connector.errors import (
    AuthorityError,
    ConnectorConfigError,
    ConnectorError,
    TransientConnectorError,
)
from hub.connector.retry import RetryPolicy

TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def build_client(
    connector: str,
    base_url: str,
    *,
    timeout_seconds: float,
    transport: httpx.BaseTransport | None = None,
    verify: ssl.SSLContext | bool = True,
    auth: httpx.Auth | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Client:
    """An ``httpx.Client`` for one authority.

    ``transport`` replaces the network (``httpx.MockTransport`` in tests,
    :class:`~hub.connector.asgi.InProcessTransport` for an in-process sandbox); ``verify``
    (an SSL context carrying a client certificate for mTLS) then has no effect, because
    TLS is the network transport's job. Redirects are not followed: an authority API that
    redirects is misconfigured, and following would resend credentials elsewhere.
    """
    common: dict[str, Any] = {
        "base_url": base_url,
        "timeout": httpx.Timeout(timeout_seconds),
        "auth": auth,
        "follow_redirects": False,
        "headers": {"User-Agent": f"evi-hub/{__version__} ({connector})", **(headers or {})},
    }
    if transport is not None:
        return httpx.Client(transport=transport, **common)
    return httpx.Client(verify=verify, **common)


def parse_retry_after(
    value: str | None, *, now: Callable[[], datetime] | None = None
) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date).

    ``None`` for a missing, unreadable, zero or past value: the caller then uses its normal
    backoff.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or (lambda: datetime.now(UTC)))()).total_seconds()
    return seconds if seconds > 0 else None


def _ssl_reason(exc: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _cut_off(error: ssl.SSLError) -> bool:
    """An end of file in the middle of TLS, not a refusal the server said out loud (an
    alert such as an unknown CA or a missing certificate)."""
    return isinstance(error, ssl.SSLEOFError) or (
        getattr(error, "reason", None) == "UNEXPECTED_EOF_WHILE_READING"
    )


def _hung_up(connector: str, where: str, how: str) -> TransientConnectorError:
    """The server ended the connection without a word: retried. Under TLS 1.3 a server
    that rejects our client certificate does exactly this after the handshake, so the
    message names that too."""
    return TransientConnectorError(
        connector,
        f"{where} {how}; it may be overloaded, or (if this persists) it does not accept our "
        f"client certificate: check client_cert and client_key with `evi connectors show "
        f"{connector}`",
    )


def translate_transport_error(
    connector: str, request: httpx.Request, exc: httpx.HTTPError
) -> ConnectorError:
    """Classify a failure to get any answer (refused, timed out, TLS, bad URL)."""
    where = f"{request.url.scheme}://{request.url.netloc.decode()}"
    what = f"{request.method} {request.url.path}"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ConnectorConfigError(
            connector,
            f"base_url {where} is not usable ({type(exc).__name__}); fix it with "
            f"`evi connectors configure {connector} --set base_url=https://…`",
        )
    if isinstance(exc, httpx.TimeoutException):
        return TransientConnectorError(
            connector, f"{where} did not answer {what} in time ({type(exc).__name__})"
        )
    tls = _ssl_reason(exc)
    if tls is not None and _cut_off(tls):
        # A server restarting or overloaded, or one that closed an idle kept-alive
        # connection just as we reused it: worth retrying.
        return _hung_up(connector, where, f"cut the TLS connection off during {what}")
    if tls is not None:
        reason = getattr(tls, "reason", None) or type(tls).__name__
        if isinstance(tls, ssl.SSLCertVerificationError):
            advice = "the authority's server certificate is not trusted; set ca_bundle"
        else:
            advice = "check client_cert, client_key and ca_bundle"
        return ConnectorConfigError(
            connector,
            f"TLS with {where} failed ({reason}); {advice} "
            f"with `evi connectors configure {connector} --set …`",
        )
    if isinstance(exc, httpx.ConnectError):
        return TransientConnectorError(
            connector,
            f"cannot reach {where} (connection failed); check that the authority's service "
            f"is up and that base_url is right (`evi connectors configure {connector}`)",
        )
    if isinstance(exc, httpx.RemoteProtocolError) and request.url.scheme == "https":
        return _hung_up(connector, where, f"closed the connection without answering {what}")
    return TransientConnectorError(
        connector, f"{where} broke off {what} ({type(exc).__name__}); it may be overloaded"
    )


def classify_response(connector: str, response: httpx.Response) -> None:
    """Raise the connector error a non-2xx response means; return for 2xx."""
    status = response.status_code
    if 200 <= status < 300:
        return
    what = f"{response.request.method} {response.request.url.path}"
    if status in (401, 403):
        raise ConnectorConfigError(
            connector,
            f"the authority refused our credentials for {what} (HTTP {status}); set valid ones "
            f"with `evi connectors configure {connector} --set …` "
            f"(`evi connectors spec {connector}` lists them)",
        )
    if status == 404:
        raise ConnectorConfigError(
            connector,
            f"{what} does not exist at the authority (HTTP 404); check base_url with "
            f"`evi connectors configure {connector} --set base_url=…`",
        )
    if status in TRANSIENT_STATUSES:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        label = "is rate-limiting us" if status == 429 else "is unavailable"
        raise TransientConnectorError(
            connector, f"the authority {label} ({what}: HTTP {status})", retry_after=retry_after
        )
    raise AuthorityError(
        connector,
        f"the authority refused {what} (HTTP {status}); the request will not be repeated, "
        "ask the authority why or check the connector version",
    )


class JsonApi:
    """A JSON API at one authority: requests that are classified, retried and decoded.

    The client is given from outside (see :func:`build_client`); this object never owns
    credentials itself.
    """

    def __init__(self, connector: str, client: httpx.Client, retry: RetryPolicy) -> None:
        self.connector = connector
        self.client = client
        self.retry = retry

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
    ) -> httpx.Response:
        """Send one request (retrying transient failures) and return the 2xx response."""

        def once() -> httpx.Response:
            request = self.client.build_request(
                method, path, params=params, json=json_body, headers=headers
            )
            try:
                response = self.client.send(request)
            except httpx.HTTPError as exc:
                raise translate_transport_error(self.connector, request, exc) from None
            classify_response(self.connector, response)
            return response

        return (retry or self.retry).call(once)

    def json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
    ) -> Any:
        """Like :meth:`request`, returning the decoded JSON body.

        Malformed JSON is an :class:`AuthorityError` (not retried: it is the authority's
        data, not the network, that is wrong).
        """
        response = self.request(
            method, path, params=params, json_body=json_body, headers=headers, retry=retry
        )
        try:
            return json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise AuthorityError(
                self.connector,
                f"the authority answered {method} {response.request.url.path} with malformed "
                "JSON; nothing from that answer was used, ask the authority to check its API",
            ) from None
