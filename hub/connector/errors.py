"""How a connector says what went wrong, so the caller knows whether to retry.

    EviError
     └── ConnectorError                       a connector failed; never a secret or a number in it
          ├── ConnectorConfigError   exit 2   our side is wrong: options, credentials, URL,
          │                                    certificate. Never retried; the message names
          │                                    the command that fixes it.
          ├── TransientConnectorError exit 75 the authority is down, slow or rate-limiting
          │                                    (connection refused, timeout, 5xx, 429).
          │                                    Retried with backoff; ``retry_after`` honoured.
          └── AuthorityError          exit 1   the authority refused the request (4xx) or
               │                               sent data that does not fit (bad JSON,
               │                               schema violation). Not retried: the same
               │                               request would get the same answer.
               ├── UnusableAnswerError          the answer as a whole cannot be used: not
               │                                JSON, malformed, too deep, too large
               ├── InvalidRecordError           one record does not fit; the others may
               └── UnmappedCodeError            strict mapping refused an unknown code

Exit 75 is ``EX_TEMPFAIL`` from ``sysexits.h``: cron and systemd treat it as "try later".
Messages name the connector, the field or status and what to do; they never repeat an
authority's response body (it may hold personal data) or an option marked secret.
"""

from __future__ import annotations

import math

from hub.errors import EviError

MAX_RETRY_AFTER_SECONDS = 86_400.0
"""The longest wait an authority can ask for (``Retry-After``): a day. A longer one counts
as a day. Within a run the retry policy never waits longer than its ``max_retry_after``
(120 s: a longer one ends the attempt at once); the value matters for a queued transfer,
which the outbox puts off that long (at most a day there too) instead of for years, or
for ever with ``inf``, which cannot be added to a time at all."""


class ConnectorError(EviError):
    """Base class of every error a connector raises; ``connector`` is its name."""

    def __init__(self, connector: str, message: str) -> None:
        super().__init__(f"{connector}: {message}")
        self.connector = connector
        self.detail = message


class ConnectorConfigError(ConnectorError):
    """Our configuration is wrong. Retrying cannot help; the message says what to change."""

    exit_code = 2
    http_status = 500


class TransientConnectorError(ConnectorError):
    """The authority could not answer now. ``retry_after`` is its ``Retry-After`` in seconds.

    ``retry_after`` is ``None`` when the authority gave none (or gave 0, a negative or a
    non-finite value): the caller then uses its normal exponential backoff. A longer one
    than :data:`MAX_RETRY_AFTER_SECONDS` counts as that long.
    """

    exit_code = 75
    http_status = 503

    def __init__(self, connector: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(connector, message)
        self.retry_after: float | None = None
        if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
            self.retry_after = min(float(retry_after), MAX_RETRY_AFTER_SECONDS)


class AuthorityError(ConnectorError):
    """The authority refused the request or sent something that does not fit its own API."""

    exit_code = 1
    http_status = 502


class RefusedRequestError(AuthorityError):
    """The authority answered a request with a refusal no retry changes (a 4xx other than
    401, 403, 404 and 429); ``status`` is its HTTP status, so a connector can tell what it
    sent wrong (e.g. a cursor it refuses, 400) from other refusals."""

    def __init__(self, connector: str, message: str, *, status: int) -> None:
        super().__init__(connector, message)
        self.status = status


class UnusableAnswerError(AuthorityError):
    """The authority's answer as a whole cannot be used: not JSON, malformed, nested too
    deep, or larger than the hub accepts. Nothing from it was used.

    Not retried for a read. Where the request may have changed something at the authority
    (a batch of pushes), the caller cannot tell what it did and treats it as transient
    instead: the idempotency keys make sending it again safe.
    """


class InvalidRecordError(AuthorityError):
    """One record violates the authority's schema; ``source_id`` says which (never whose)."""

    def __init__(self, connector: str, source_id: str, problems: list[str] | None = None) -> None:
        self.source_id = source_id
        self.problems = list(problems or [])
        detail = "; ".join(self.problems) if self.problems else "does not fit the schema"
        super().__init__(connector, f"record {source_id} was refused: {detail}")


class UnmappedCodeError(AuthorityError):
    """Strict mapping is on and a record carries a code its mapping file does not know."""

    def __init__(
        self, connector: str, source_id: str, field: str, code: str, mapping_file: str
    ) -> None:
        self.source_id = source_id
        self.field = field
        self.code = code
        super().__init__(
            connector,
            f"record {source_id} has {field} code '{code}' that {mapping_file} does not map; "
            "add it there, or turn sync.strict_mapping off to keep such records flagged",
        )
