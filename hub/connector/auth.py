"""Credentials on requests, as ``httpx.Auth`` flows that never show the secret.

* :class:`BearerToken`: a static API token in ``Authorization: Bearer …``.
* :class:`ClientCredentials`: OAuth 2.0 client credentials (RFC 6749 §4.4). The access
  token is fetched on first use, kept until shortly before it expires, and fetched again
  once if the API answers 401 (the authority restarted or revoked it).

Both keep the secret in a ``SecretStr`` and have a ``repr`` without it. httpx masks the
``Authorization`` header in its own reprs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Generator

import httpx
from pydantic import SecretStr

from hub.connector.errors import AuthorityError, ConnectorConfigError
from hub.connector.http import classify_response

# Renew this long before the token's stated expiry, so a request never races it.
_EXPIRY_MARGIN_S = 30.0


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
    """OAuth 2.0 client credentials; the client secret goes in HTTP Basic to ``token_url``."""

    requires_response_body = True

    def __init__(
        self,
        connector: str,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        *,
        scope: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connector = connector
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._clock = clock
        self._lock = threading.Lock()
        self._access: str | None = None
        self._expires_at = 0.0

    def _token_request(self, like: httpx.Request) -> httpx.Request:
        data = {"grant_type": "client_credentials"}
        if self._scope:
            data["scope"] = self._scope
        url = like.url.join(self._token_url)
        basic = httpx.BasicAuth(self._client_id, self._client_secret.get_secret_value())
        request = httpx.Request("POST", url, data=data)
        return next(basic.auth_flow(request))

    def _store(self, response: httpx.Response) -> None:
        if response.status_code in (400, 401, 403):
            # RFC 6749 §5.2: invalid_client and friends come back as 400 or 401.
            raise ConnectorConfigError(
                self._connector,
                f"the authority's token service refused client_id/client_secret "
                f"(HTTP {response.status_code}); set valid ones with `evi connectors configure "
                f"{self._connector} --set client_id=… --set client_secret=…`",
            )
        classify_response(self._connector, response)
        try:
            body = json.loads(response.content)
            access = str(body["access_token"])
            lifetime = float(body.get("expires_in", 300))
        except (ValueError, KeyError, TypeError):
            raise AuthorityError(
                self._connector, "the token service answered without a usable access_token"
            ) from None
        self._access = access
        self._expires_at = self._clock() + max(lifetime - _EXPIRY_MARGIN_S, 0.0)

    def _valid(self) -> str | None:
        if self._access is not None and self._clock() < self._expires_at:
            return self._access
        return None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        with self._lock:
            token = self._valid()
        if token is None:
            response = yield self._token_request(request)
            with self._lock:
                self._store(response)
                token = self._access
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            # The token may have been revoked early (e.g. the authority restarted): once more.
            renewal = yield self._token_request(request)
            with self._lock:
                self._store(renewal)
                request.headers["Authorization"] = f"Bearer {self._access}"
            yield request

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self._client_id!r}, client_secret=**********)"
