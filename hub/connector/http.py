"""HTTP for connectors: httpx clients with timeouts, errors classified at the boundary.

Every request a connector makes goes through :class:`JsonApi`, which

* translates httpx's exceptions and the authority's status codes into the three
  connector errors (``raise … from None`` so no request, header or body rides along in a
  traceback);
* retries transient failures with :class:`~hub.connector.retry.RetryPolicy`,
  honouring ``Retry-After`` (at most :data:`MAX_RETRY_AFTER_SECONDS`);
* streams each answer under a deadline (:data:`DEADLINE_FACTOR` × ``timeout_seconds``
  for the whole request, not per read) and refuses one larger than
  :data:`MAX_BODY_BYTES`;
* refuses an answer that is not JSON (content type), malformed or nested too deep as an
  :class:`UnusableAnswerError`.

:func:`build_client` refuses plain ``http://`` over the network except to this machine
(loopback): credentials and identity numbers never cross a network unencrypted.

Messages name the method and path, never the query string or body (they may carry
personal data) and never a header (they carry credentials).
"""

from __future__ import annotations

import ipaddress
import json
import math
import ssl
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from hub import __version__
from hub.connector.errors import (
    MAX_RETRY_AFTER_SECONDS,
    ConnectorConfigError,
    ConnectorError,
    RefusedRequestError,
    TransientConnectorError,
    UnusableAnswerError,
)
from hub.connector.limits import (
    DEADLINE,
    MAX_BODY_BYTES,
    CappedStream,
    buffered,
    content_length,
    drain,
    is_json,
    media_type,
    request_deadline,
    too_large,
    too_slow,
)
from hub.connector.retry import RetryPolicy

TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

IN_FLIGHT = 409
"""To a request carrying idempotency keys, 409 means "a request with this key is still being
processed" (the IETF Idempotency-Key header draft): not now, never a refusal. To any
other request it is a refusal."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine: ``localhost``, 127.0.0.0/8 or ``::1``."""
    host = host.rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def endpoint_url(base_url: str, url: str) -> str:
    """``url`` as an absolute URL: as given when it is one, otherwise placed under
    ``base_url`` the way httpx places a request path under a client's ``base_url``
    (``/oauth2/token`` under ``https://h/api`` is ``https://h/api/oauth2/token``), so an
    endpoint the administrator configures reads like every path the connector calls."""
    try:
        if httpx.URL(url).is_absolute_url:
            return url
        base = base_url if base_url.endswith("/") else base_url + "/"
        return str(httpx.URL(base).join(url.lstrip("/")))
    except httpx.InvalidURL:
        return url  # refused, with the option's name, by require_secure_url or when used


def require_secure_url(
    connector: str, url: str, *, option: str = "base_url", client_certificate: bool = False
) -> None:
    """Refuse a URL that would send credentials or personal data unencrypted.

    ``https`` is always fine. Plain ``http`` is refused, except to a loopback address (a
    sandbox on this machine) when no client certificate is involved: a client certificate
    is only presented over TLS, so with ``http`` it would silently not be used at all.
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise ConnectorConfigError(
            connector,
            f"{option} is not a usable URL; set it with "
            f"`evi connectors configure {connector} --set {option}=https://…`",
        ) from None
    if parsed.scheme != "http":
        return  # https, or a scheme httpx refuses (a configuration error when used)
    where = f"http://{parsed.netloc.decode()}"
    if client_certificate:
        raise ConnectorConfigError(
            connector,
            f"{option} {where} is plain http, which cannot carry the client certificate; "
            f"set it with `evi connectors configure {connector} --set {option}=https://…`",
        )
    if not is_loopback(parsed.host):
        raise ConnectorConfigError(
            connector,
            f"{option} {where} is plain http: credentials and identity numbers would cross "
            f"the network unencrypted; set it with `evi connectors configure {connector} "
            f"--set {option}=https://…` (plain http is accepted only to this machine: "
            "localhost, 127.0.0.0/8, ::1)",
        )


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

    Over the network (no ``transport``) ``base_url`` must be https, or http to a loopback
    address (:func:`require_secure_url`); so must the token URL of an ``auth`` that has
    one (``token_url``, as :class:`~hub.connector.auth.ClientCredentials`).
    """
    if transport is None:
        require_secure_url(connector, base_url)
        token_url = getattr(auth, "token_url", None)
        if isinstance(token_url, str):
            require_secure_url(connector, endpoint_url(base_url, token_url), option="token_url")
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

    ``None`` for a missing, unreadable, zero, negative, past or non-finite (``inf``,
    ``nan``) value: the caller then uses its normal backoff. A longer wait than
    :data:`~hub.connector.errors.MAX_RETRY_AFTER_SECONDS` (a day) counts as that long.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or (lambda: datetime.now(UTC)))()).total_seconds()
    if math.isinf(seconds) and value.isascii() and value.isdigit():
        seconds = MAX_RETRY_AFTER_SECONDS  # a very long run of digits: too long, not absent
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    return min(seconds, MAX_RETRY_AFTER_SECONDS)


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


def classify_response(connector: str, response: httpx.Response, *, keyed: bool = False) -> None:
    """Raise the connector error a non-2xx response means; return for 2xx.

    ``keyed``: the request carried idempotency keys, so 409 is :data:`IN_FLIGHT`."""
    status = response.status_code
    if 200 <= status < 300:
        return
    what = f"{response.request.method} {response.request.url.path}"
    if status in (401, 403):
        raise ConnectorConfigError(
            connector,
            f"the authority refused our credentials for {what} (HTTP {status}); set valid ones "
            f"with `evi connectors configure {connector} --secret-from-env KEY=ENV_VAR` "
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
    if keyed and status == IN_FLIGHT:
        raise TransientConnectorError(
            connector,
            f"the authority is still processing an earlier request with the same idempotency "
            f"key ({what}: HTTP {status}); it will be sent again with its key",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    raise RefusedRequestError(
        connector,
        f"the authority refused {what} (HTTP {status}); the request will not be repeated, "
        "ask the authority why or check the connector version",
        status=status,
    )


class JsonApi:
    """A JSON API at one authority: requests that are classified, retried and decoded.

    The client is given from outside (see :func:`build_client`); this object never owns
    credentials itself. Each attempt must be answered in full within ``deadline_seconds``
    (default :data:`DEADLINE_FACTOR` × the client's timeout) and with at most
    ``max_body_bytes``.
    """

    def __init__(
        self,
        connector: str,
        client: httpx.Client,
        retry: RetryPolicy,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        deadline_seconds: float | None = None,
    ) -> None:
        self.connector = connector
        self.client = client
        self.retry = retry
        self.max_body_bytes = max_body_bytes
        self.deadline_seconds = deadline_seconds or request_deadline(client.timeout)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        keyed: bool = False,
    ) -> httpx.Response:
        """Send one request (retrying transient failures) and return the 2xx response.

        The answer is streamed under the deadline and the size limit, and returned read
        (``.content``, ``.json()``). ``keyed``: the body carries idempotency keys (a batch
        of pushes); a request with an ``Idempotency-Key`` header is keyed too. A keyed
        request answered 409 is transient (:data:`IN_FLIGHT`).
        """
        keyed = keyed or any(name.lower() == "idempotency-key" for name in headers or ())

        def once() -> httpx.Response:
            request = self.client.build_request(
                method, path, params=params, json=json_body, headers=headers
            )
            deadline = time.monotonic() + self.deadline_seconds
            token = DEADLINE.set(deadline)
            try:
                try:
                    response = self.client.send(request, stream=True)
                except httpx.HTTPError as exc:
                    raise translate_transport_error(self.connector, request, exc) from None
                try:
                    if not 200 <= response.status_code < 300:
                        drain(response, deadline)
                        classify_response(self.connector, response, keyed=keyed)
                    return self._read(response, deadline)
                finally:
                    response.close()
            finally:
                DEADLINE.reset(token)

        return (retry or self.retry).call(once)

    def _read(self, response: httpx.Response, deadline: float) -> httpx.Response:
        """Read the answer's body within the limit and the deadline; the response, read."""
        request = response.request
        what = f"{request.method} {request.url.path}"
        limit = self.max_body_bytes
        declared = content_length(response)
        if declared is not None and declared > limit:
            raise too_large(self.connector, what, limit)
        encoding = response.headers.get("content-encoding", "").strip().lower()
        try:
            if encoding not in ("", "identity"):
                # Count what it unpacks to: a few KiB of gzip can unpack to gigabytes.
                return buffered(response, self._unpacked(response, deadline, what))
            if isinstance(response.stream, httpx.SyncByteStream):
                response.stream = CappedStream(
                    response.stream,
                    limit=limit,
                    deadline=deadline,
                    too_large=lambda: too_large(self.connector, what, limit),
                    too_slow=lambda: too_slow(self.connector, request, self.deadline_seconds),
                )
            content = response.read()  # at once if a transport has read it already
        except httpx.HTTPError as exc:
            raise translate_transport_error(self.connector, request, exc) from None
        if len(content) > limit:
            raise too_large(self.connector, what, limit)
        return response

    def _unpacked(self, response: httpx.Response, deadline: float, what: str) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise too_large(self.connector, what, self.max_body_bytes)
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise too_slow(self.connector, response.request, self.deadline_seconds)
        return b"".join(chunks)

    def json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        keyed: bool = False,
    ) -> Any:
        """Like :meth:`request`, returning the decoded JSON body.

        An answer without a JSON content type (``application/json`` or ``…+json``), with
        malformed JSON or with JSON nested too deep to decode is an
        :class:`UnusableAnswerError` (not retried: it is the authority's data, not the
        network, that is wrong).
        """
        response = self.request(
            method,
            path,
            params=params,
            json_body=json_body,
            headers=headers,
            retry=retry,
            keyed=keyed,
        )
        what = f"{method} {response.request.url.path}"
        content_type = response.headers.get("content-type")
        if not is_json(content_type):
            raise UnusableAnswerError(
                self.connector,
                f"the authority answered {what} with {media_type(content_type)} instead of "
                "JSON; nothing from that answer was used, ask the authority to check its API",
            )
        try:
            return json.loads(response.content)
        except (ValueError, RecursionError):
            # ValueError: JSONDecodeError, UnicodeDecodeError, a number too long to convert;
            # RecursionError: brackets nested deeper than the decoder can follow.
            raise UnusableAnswerError(
                self.connector,
                f"the authority answered {what} with malformed JSON; nothing from that "
                "answer was used, ask the authority to check its API",
            ) from None
