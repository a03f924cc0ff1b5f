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
               ├── InvalidRecordError           one record does not fit; the others may
               └── UnmappedCodeError            strict mapping refused an unknown code

Exit 75 is ``EX_TEMPFAIL`` from ``sysexits.h``: cron and systemd treat it as "try later".
Messages name the connector, the field or status and what to do; they never repeat an
authority's response body (it may hold personal data) or an option marked secret.
"""

from __future__ import annotations

from hub.errors import EviError


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

    ``retry_after`` is ``None`` when the authority gave none (or gave 0): the caller then
    uses its normal exponential backoff.
    """

    exit_code = 75
    http_status = 503

    def __init__(self, connector: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(connector, message)
        self.retry_after = retry_after if retry_after and retry_after > 0 else None


class AuthorityError(ConnectorError):
    """The authority refused the request or sent something that does not fit its own API."""

    exit_code = 1
    http_status = 502


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
