"""Domain errors that carry a user-facing message.

The CLI and the web edge turn these into exit codes and HTTP statuses; nothing else
does. A message must say what is wrong *and* what to do, must never contain personal
data (use the participant pseudonym) and never a secret.

    EviError                      exit 1
     ├── ConfigError              exit 2  bad settings, missing key, unknown option
     ├── InputError               exit 2  a file or argument the user gave is invalid
     ├── NotFoundError            exit 1  asked for something that does not exist
     ├── StorageError             exit 1  the database cannot be reached or is in a bad state
     ├── LockHeldError            exit 3  another process holds the lock (e.g. a sync)
     ├── hub.ledger.verify.…      exit 4  `evi log verify` found the log altered
     └── hub.connector.errors.…   exit 2 / 75 / 1  configuration / transient (EX_TEMPFAIL) /
                                          the authority refused (see that module)
"""

from __future__ import annotations


class EviError(Exception):
    """Base class: ``str(err)`` is the one line shown to the user."""

    exit_code: int = 1
    http_status: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(EviError):
    exit_code = 2
    http_status = 500


class InputError(EviError):
    exit_code = 2
    http_status = 422

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class NotFoundError(EviError):
    exit_code = 1
    http_status = 404


class StorageError(EviError):
    exit_code = 1
    http_status = 503


class LockHeldError(EviError):
    exit_code = 3
    http_status = 409
