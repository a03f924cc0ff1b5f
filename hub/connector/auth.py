"""Credentials on requests, as ``httpx.Auth`` flows that never show the secret.

* :class:`BearerToken`: a static API token in ``Authorization: Bearer …``.
* :class:`ClientCredentials`: OAuth 2.0 client credentials (RFC 6749 §4.4). The access
  token is fetched on first use (once, however many requests start together), kept until
  shortly before it expires, and fetched again once if the API answers 401 (the
  authority restarted or revoked it).

Both keep the secret in a ``SecretStr`` and have a ``repr`` without it. httpx masks the
``Authorization`` header in its own reprs.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Generator

import httpx
from pydantic import SecretStr

from hub.connector.errors import AuthorityError, ConnectorConfigError
from hub.connector.http import classify_response, endpoint_url, translate_transport_error
from hub.connector.limits import (
    CappedStream,
    content_length,
    current_deadline,
    is_json,
    request_deadline,
    too_slow,
)

# Renew this long before the token's stated expiry, so a request never races it.
_EXPIRY_MARGIN_S = 30.0
# A token said to last longer is renewed after a day all the same.
_MAX_LIFETIME_S = 86_400.0
# An access token is sent in a header: visible ASCII only (RFC 6750's b64token and more).
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")

TOKEN_BODY_BYTES = 64 * 1024
"""The largest token answer accepted: one holds a token and a few fields."""


class BearerToken(httpx.Auth):
    """Sends a static token as ``Authorization: Bearer <token>``."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return "BearerToken(**********)"


class ClientCredentials(httpx.Auth):
    """OAuth 2.0 client credentials; the client secret goes in HTTP Basic to ``token_url``.

    One token serves every request of the client, from any thread: when none is valid, the
    first request fetches it while holding a lock and the others wait for it, so requests
    made together cause one token request, not one each. The token answer is read under
    the same deadline as the request it serves, must be JSON and at most
    :data:`TOKEN_BODY_BYTES`.
    """

    # The flow reads the token answer itself (bounded); an API answer is never read here.
    requires_response_body = False

    def __init__(
        self,
        connector: str,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        *,
        base_url: str | None = None,
        scope: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connector = connector
        # Given the API's base_url, a relative token_url is placed under it as the API's own
        # paths are (:func:`~hub.connector.http.endpoint_url`); without, it is resolved
        # against each request's URL (RFC 3986).
        self._token_url = token_url if base_url is None else endpoint_url(base_url, token_url)
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._clock = clock
        self._lock = threading.Lock()
        self._access: str | None = None
        self._expires_at = 0.0

    @property
    def token_url(self) -> str:
        """The token endpoint: absolute, or placed under ``base_url`` when one was given
        (checked for https by :func:`~hub.connector.http.build_client`)."""
        return self._token_url

    def _token_request(self, like: httpx.Request) -> httpx.Request:
        data = {"grant_type": "client_credentials"}
        if self._scope:
            data["scope"] = self._scope
        url = like.url.join(self._token_url)
        basic = httpx.BasicAuth(self._client_id, self._client_secret.get_secret_value())
        # identity: a compressed token answer could inflate past the limit once decoded
        headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
        request = httpx.Request("POST", url, data=data, headers=headers)
        if "timeout" in like.extensions:
            request.extensions["timeout"] = like.extensions["timeout"]
        return next(basic.auth_flow(request))

    def _unusable(self, why: str) -> AuthorityError:
        return AuthorityError(
            self._connector, f"the token service answered without a usable access_token ({why})"
        )

    def _read(self, response: httpx.Response) -> bytes:
        """The token answer's body: JSON, not compressed, within the size and the deadline."""
        if not is_json(response.headers.get("content-type")):
            raise self._unusable("not JSON")
        if response.headers.get("content-encoding", "identity").strip().lower() != "identity":
            raise self._unusable("compressed, though we asked for it plain")
        declared = content_length(response)
        if declared is not None and declared > TOKEN_BODY_BYTES:
            raise self._unusable("too large")
        request = response.request
        if not isinstance(response.stream, httpx.SyncByteStream):  # pragma: no cover - async
            raise self._unusable("read asynchronously")
        response.stream = CappedStream(
            response.stream,
            limit=TOKEN_BODY_BYTES,
            deadline=current_deadline(request),
            too_large=lambda: self._unusable("too large"),
            too_slow=lambda: too_slow(self._connector, request, _seconds_allowed(request)),
        )
        try:
            return response.read()
        except httpx.HTTPError as exc:
            raise translate_transport_error(self._connector, request, exc) from None

    def _store(self, response: httpx.Response) -> str:
        """Keep the token the answer carries and return it (call with the lock held)."""
        if response.status_code in (400, 401, 403):
            # RFC 6749 §5.2: invalid_client and friends come back as 400 or 401.
            raise ConnectorConfigError(
                self._connector,
                f"the authority's token service refused client_id/client_secret "
                f"(HTTP {response.status_code}); set valid ones with `evi connectors configure "
                f"{self._connector} --set client_id=… --secret-from-env client_secret=ENV_VAR`",
            )
        classify_response(self._connector, response)
        content = self._read(response)
        try:
            body = json.loads(content)
            access = body["access_token"]
            lifetime = float(body.get("expires_in", 300))
        except (ValueError, RecursionError, KeyError, TypeError, AttributeError):
            raise self._unusable("malformed") from None
        if not isinstance(access, str) or not _TOKEN.fullmatch(access):
            raise self._unusable("not a token")  # it goes into a header: visible ASCII only
        if not math.isfinite(lifetime):
            raise self._unusable("expires_in is not a number")
        lifetime = min(max(lifetime, 0.0), _MAX_LIFETIME_S)
        self._access = access
        self._expires_at = self._clock() + max(lifetime - _EXPIRY_MARGIN_S, 0.0)
        return access

    def _valid(self) -> str | None:
        if self._access is not None and self._clock() < self._expires_at:
            return self._access
        return None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # The lock is held while the token request is out (the generator is suspended at
        # the yield in this same thread; httpx closes it, releasing the lock, if the
        # request fails), so concurrent requests wait for that one token.
        with self._lock:
            token = self._valid()
            if token is None:
                token = self._store((yield self._token_request(request)))
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            # The token may have been revoked early (e.g. the authority restarted): renew
            # once, unless another request has renewed it meanwhile. httpx reads this
            # refusal before sending the next request: give it nothing to read.
            _discard_body(response)
            with self._lock:
                current = self._valid()
                if current is None or current == token:
                    current = self._store((yield self._token_request(request)))
            request.headers["Authorization"] = f"Bearer {current}"
            yield request

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self._client_id!r}, client_secret=**********)"


def _seconds_allowed(request: httpx.Request) -> float:
    """Seconds the deadline of ``request`` allows in all (for messages)."""
    return request_deadline(request.extensions.get("timeout") or {})


def _discard_body(response: httpx.Response) -> None:
    """Close an answer whose body is of no use, leaving httpx an empty one to read."""
    stream = response.stream
    response.stream = httpx.ByteStream(b"")
    if isinstance(stream, httpx.SyncByteStream):
        stream.close()
