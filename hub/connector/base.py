"""The one class a connector author subclasses.

A connector speaks one authority's API. It declares what it is as class attributes and its
settings as a nested ``Options`` model, and implements four things::

    check()                      -> None              can we talk to the authority?
    pull(cursor, subscriptions)  -> Iterator[NativeRecord]
    map(native)                  -> CommonRecord      via its mapping file
    push(transfer)               -> PushResult        (only if it receives categories)
    push_many(transfers)         -> list[PushResult]  (optional: batches, if the API has them)

and, where the authority keeps a list of people the hub follows, ``subscribe`` /
``unsubscribe``. Every method raises one of the errors in :mod:`hub.connector.errors`.

The connector does not open network connections on its own terms: it is given an
``httpx.Client`` (tests give one on ``httpx.MockTransport``, the demo one on an in-process
sandbox), and :meth:`Connector.create` builds the production client from the options
(timeouts, credentials, TLS). See docs/connector-authoring.md for a worked example.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self

import httpx

from hub.connector.errors import ConnectorConfigError
from hub.connector.http import JsonApi, build_client
from hub.connector.mapping import Mapping, mapping_for
from hub.connector.options import ConnectorOptions, HttpOptions
from hub.connector.retry import RetryPolicy
from hub.model.identity import PersonalIdentity
from hub.model.records import CommonRecord, NativeRecord, PushResult, Transfer
from hub.model.vocab import Category

if TYPE_CHECKING:
    from hub.connector.asgi import ASGIApp
    from hub.connector.sandbox import SandboxSettings


class Connector(ABC):
    """Base class of every connector. Subclass it, set the class attributes, register it.

    Class attributes:

    * ``name``: the party name, also the connector's key everywhere (``"af"``); lowercase.
    * ``authority``: the authority's display name (``"Arbetsförmedlingen"``).
    * ``version``: the connector's own version, shown by ``evi connectors list``.
    * ``delivers``: categories this connector can pull from the authority.
    * ``receives``: categories it can push to the authority (empty: it never receives).
    * ``Options``: nested :class:`ConnectorOptions` model; ``SecretStr`` fields are stored
      encrypted and never shown.
    * ``mapping_file``: path of its mapping file; ``None`` means the shipped
      ``mappings/NAME.toml``.
    * ``push_batch_size``: transfers per :meth:`push_many` call when the authority takes
      messages in batches (1, the default: one :meth:`push` per transfer).
    * ``searches_people``: the authority keeps no list of followed people; :meth:`pull`
      names them in its queries and reads only their records. The hub then reads a person
      it has just started following from the start (``pull(None, [those people])``)
      before the night's pull from the cursor, so their records from before are not
      skipped. An authority that keeps a list (see :meth:`subscribe`) must put a newly
      registered person's records in its feed again as changed now instead.
    """

    name: ClassVar[str]
    authority: ClassVar[str]
    version: ClassVar[str]
    delivers: ClassVar[frozenset[Category]] = frozenset()
    receives: ClassVar[frozenset[Category]] = frozenset()
    mapping_file: ClassVar[Path | None] = None
    push_batch_size: ClassVar[int] = 1
    searches_people: ClassVar[bool] = False

    class Options(ConnectorOptions):
        """No options. Subclasses replace this with their own model."""

    def __init__(
        self,
        options: ConnectorOptions,
        client: httpx.Client,
        *,
        retry: RetryPolicy | None = None,
        strict_mapping: bool = False,
    ) -> None:
        """Use validated ``options`` and a ready ``client`` (whose base URL is the API root).

        ``retry`` is the budget for transient failures; ``strict_mapping`` refuses records
        with unknown codes instead of keeping them flagged.
        """
        if not isinstance(options, self.Options):
            raise TypeError(f"{type(self).__name__} needs {self.Options.__qualname__} options")
        self.options: ConnectorOptions = options
        self.client = client
        self.retry = retry or RetryPolicy()
        self.strict_mapping = strict_mapping
        self.api = JsonApi(self.name, client, self.retry)
        self._mapping: Mapping | None = None

    # -- construction ---------------------------------------------------------------

    @classmethod
    def create(
        cls,
        options: ConnectorOptions,
        *,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        strict_mapping: bool = False,
    ) -> Self:
        """Build the connector with the client :meth:`build_client` makes from ``options``."""
        client = cls.build_client(options, transport=transport)
        try:
            return cls(options, client, retry=retry, strict_mapping=strict_mapping)
        except BaseException:
            client.close()
            raise

    @classmethod
    def build_client(
        cls, options: ConnectorOptions, *, transport: httpx.BaseTransport | None = None
    ) -> httpx.Client:
        """The ``httpx.Client`` for ``options``; override to add credentials or TLS.

        The default serves :class:`HttpOptions` (``base_url``, ``timeout_seconds``) without
        credentials. ``transport`` replaces the network.
        """
        if not isinstance(options, HttpOptions):
            raise ConnectorConfigError(
                cls.name, "its options have no base_url; override build_client()"
            )
        return build_client(
            cls.name,
            options.base_url,
            timeout_seconds=options.timeout_seconds,
            transport=transport,
        )

    # -- the contract --------------------------------------------------------------

    @abstractmethod
    def check(self) -> None:
        """Prove the authority answers and accepts our credentials; raise if not.

        Must not read or write anyone's data. Called by ``evi connectors check NAME``.
        """

    @abstractmethod
    def pull(
        self, cursor: str | None, subscriptions: Sequence[PersonalIdentity]
    ) -> Iterator[NativeRecord]:
        """Yield the authority's records from ``cursor`` on (``None``: from the start).

        Each record carries its ``source_id`` and the ``cursor`` to resume from after it.
        Cursors are inclusive: resuming may yield the last record again, which is harmless
        because records are upserted by source id. ``subscriptions`` are the people the
        hub follows at this authority, for APIs that need them in each query; authorities
        that keep their own list (see :meth:`subscribe`) ignore it. A failure part-way
        raises after the records already yielded, each of which stays valid.
        """

    @abstractmethod
    def map(self, native: NativeRecord) -> CommonRecord:
        """Turn a native record into the common model using :attr:`mapping`.

        Unknown codes are kept and flagged (``CommonRecord.unmapped``), or refused in
        strict mode (:class:`UnmappedCodeError`). A record that violates the authority's
        schema raises :class:`InvalidRecordError` naming the field, never its value.
        """

    def push(self, transfer: Transfer) -> PushResult:
        """Deliver one transfer; must send ``transfer.idempotency_key`` as ``Idempotency-Key``.

        The default refuses: a connector that receives nothing is never asked to push.
        """
        raise ConnectorConfigError(
            self.name, f"{self.authority} receives nothing through this connector"
        )

    def push_many(self, transfers: Sequence[Transfer]) -> list[PushResult]:
        """Deliver several transfers, in order, in as few requests as the API allows.

        Returns one result per transfer, in order; a failure of the whole call raises like
        :meth:`push` (every transfer in it is then tried again later with its key). The
        delivery uses it only when :attr:`push_batch_size` is above 1; the default pushes
        one at a time.
        """
        return [self.push(transfer) for transfer in transfers]

    def subscribe(self, identity: PersonalIdentity) -> None:  # noqa: B027 - optional hook
        """Tell the authority the hub follows this person (their consent names it).

        Idempotent. The default does nothing: the authority keeps no list, and the
        person is named in each query instead (see :meth:`pull`).
        """

    def unsubscribe(self, identity: PersonalIdentity) -> None:  # noqa: B027 - optional hook
        """Tell the authority the hub no longer follows this person. Idempotent."""

    # -- helpers -------------------------------------------------------------------

    def require_api_major(self, reported: str, supported: str) -> None:
        """Refuse an authority API whose major version this connector does not speak."""
        if reported.split(".")[0] != supported:
            raise ConnectorConfigError(
                self.name,
                f"{self.authority}'s API is version {reported}; connector {self.version} "
                f"speaks version {supported}.x, install a matching one",
            )

    @property
    def mapping(self) -> Mapping:
        """The connector's mapping file, loaded and checked on first use."""
        if self._mapping is None:
            self._mapping = mapping_for(self.name, self.mapping_file)
        return self._mapping

    @classmethod
    def sandbox_app(cls, settings: SandboxSettings) -> ASGIApp | None:
        """An ASGI app that plays this authority, or ``None`` if the connector has none."""
        return None

    @classmethod
    def sandbox_options(cls, base_url: str, home: Path) -> dict[str, Any]:
        """Options that let this connector talk to its sandbox at ``base_url``.

        ``home`` is ``$EVI_HOME``, for sandbox files such as test certificates. Values may
        include the sandbox's (public, test-only) credentials.
        """
        return {"base_url": base_url}

    @classmethod
    def sandbox_server_options(cls, home: Path) -> dict[str, Any]:
        """Extra uvicorn settings for serving the sandbox over HTTP (e.g. TLS files).

        A non-empty ``ssl_certfile`` makes ``evi sandbox serve`` listen on https.
        """
        return {}

    def close(self) -> None:
        """Close the HTTP client (and with it any in-process transport)."""
        self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        # Options repr masks SecretStr; the client is left out on purpose (it holds auth).
        return f"<{type(self).__name__} {self.name!r} options={self.options!r}>"
