"""Mapping files: one versioned TOML file per authority, native codes to common codes.

A file looks like this (``mappings/af.toml``)::

    [mapping]
    authority = "af"
    version = "2025.1"

    [benefit_type]          # the common code list (hub.model.codes.CODE_LISTS)
    AKS = "aktivitetsstod"  # native code = common code

The file is checked when it is loaded: every section must name a common code list and
every value must be a code of that list, so a typo in a mapping fails at start-up rather
than during a sync. While mapping a record, a native code the file does not know becomes
``unmapped`` and is listed in the record's ``unmapped`` (kept, flagged, counted), or,
in strict mode, refuses the record with :class:`UnmappedCodeError`. Never dropped. An
unknown code that is not fit to show (:func:`unfit_code`) refuses its record as
:class:`InvalidRecordError`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from hub.connector.errors import ConnectorConfigError, InvalidRecordError, UnmappedCodeError
from hub.connector.native import MAX_TEXT, NOT_PRINTABLE, TOO_LONG, record_id
from hub.ledger.event import IDENTITY_NUMBER
from hub.model.codes import CODE_LISTS
from hub.model.records import UnmappedCode
from hub.resources import bundled_path

E = TypeVar("E", bound=StrEnum)

_PSEUDONYM = re.compile(r"p-[0-9a-f]{32}", re.IGNORECASE)
"""A participant's pseudonym anywhere in a text (``hub.model.participant.PSEUDONYM``)."""


@dataclass(frozen=True)
class Mapping:
    """A loaded, checked mapping file."""

    authority: str
    version: str
    path: Path
    tables: dict[str, dict[str, str]]
    _members: dict[type[StrEnum], dict[str, StrEnum]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def codes_for(self, connector: str, source_id: str, *, strict: bool) -> RecordCodes:
        """A mapper for the codes of one record (collects what it could not map)."""
        return RecordCodes(self, connector, source_id, strict)

    def known(self, code_list: str) -> frozenset[str]:
        """The native codes this file maps in ``code_list``."""
        return frozenset(self.tables.get(code_list, {}))

    def common_code(self, code_list: type[E], native: str) -> E | None:
        """The member of ``code_list`` that ``native`` maps to, or ``None`` if unmapped."""
        members = self._members.get(code_list)
        if members is None:
            table = self.tables.get(_list_name(code_list), {})
            members = {code: code_list(common) for code, common in table.items()}
            self._members[code_list] = members
        found = members.get(native)
        return found  # type: ignore[return-value]  # members[code_list] holds E members


@dataclass
class RecordCodes:
    """Maps the codes of one record; ``unmapped`` lists the codes the file does not know."""

    mapping: Mapping
    connector: str
    source_id: str
    strict: bool
    unmapped: list[UnmappedCode] = field(default_factory=list)

    def map(self, code_list: type[E], native: str, *, field: str) -> E:
        """The common code for ``native`` in ``code_list``; ``field`` names where it sits.

        Unknown codes give the list's ``UNMAPPED`` member and are recorded, or raise
        :class:`UnmappedCodeError` in strict mode.
        """
        common = self.mapping.common_code(code_list, native)
        if common is not None:
            return common
        why = unfit_code(native)
        if why:
            raise InvalidRecordError(self.connector, record_id(self.source_id), [f"{field}: {why}"])
        if self.strict:
            raise UnmappedCodeError(
                self.connector, self.source_id, field, native, self.mapping.path.name
            )
        self.unmapped.append(UnmappedCode(field=field, code=native))
        return code_list("unmapped")


def unfit_code(code: str) -> str | None:
    """Why ``code``, which the mapping does not know, cannot be kept as an unmapped code
    (which `evi connectors unmapped`, the register extract and the pages show), or ``None``.

    An unknown code is the authority's vocabulary, shown to staff as it came: it must be
    printable and at most :data:`~hub.connector.native.MAX_TEXT` characters, and it must
    not look like a personal identity number or a participant's pseudonym (a field swapped
    by a faulty authority would put one person's number in front of an administrator, or
    in another person's register extract).
    """
    if len(code) > MAX_TEXT:
        return TOO_LONG
    if not code.isprintable():
        return NOT_PRINTABLE
    if IDENTITY_NUMBER.search(code) or _PSEUDONYM.search(code):
        return "looks like a personal identity number or a pseudonym, not a code"
    return None


def _list_name(code_list: type[StrEnum]) -> str:
    for name, cls in CODE_LISTS.items():
        if cls is code_list:
            return name
    raise ValueError(f"{code_list.__name__} is not a common code list")


def load_mapping(path: Path, *, connector: str) -> Mapping:
    """Read and check one mapping file; :class:`ConnectorConfigError` says what is wrong."""

    def bad(reason: str) -> ConnectorConfigError:
        return ConnectorConfigError(connector, f"mapping file {path}: {reason}")

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise bad(
            "does not exist; every connector needs one (see docs/connector-authoring.md)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise bad(f"is not valid TOML ({exc})") from None
    header = data.pop("mapping", None)
    if not isinstance(header, dict) or not header.get("version"):
        raise bad("needs a [mapping] section with authority and version")
    if header.get("authority") != connector:
        raise bad(f"[mapping] authority is {header.get('authority')!r}, expected {connector!r}")
    tables: dict[str, dict[str, str]] = {}
    for section, entries in data.items():
        code_list = CODE_LISTS.get(section)
        if code_list is None:
            raise bad(f"unknown section [{section}]; use one of {', '.join(sorted(CODE_LISTS))}")
        if not isinstance(entries, dict):
            raise bad(f"[{section}] must be a table of native code = common code")
        allowed = {member.value for member in code_list} - {"unmapped"}
        for native, common in entries.items():
            if common not in allowed:
                raise bad(
                    f"[{section}] maps {native!r} to {common!r}, which is not a common code; "
                    f"use one of {', '.join(sorted(allowed))}"
                )
        tables[section] = {str(k): str(v) for k, v in entries.items()}
    return Mapping(authority=connector, version=str(header["version"]), path=path, tables=tables)


@lru_cache(maxsize=64)
def _cached(path: Path, mtime_ns: int, connector: str) -> Mapping:
    return load_mapping(path, connector=connector)


def mapping_for(connector: str, path: Path | None = None) -> Mapping:
    """The mapping of ``connector``: ``path`` if given, else the shipped ``mappings/NAME.toml``.

    Only a built-in connector may leave ``path`` out; for any other
    :class:`ConnectorConfigError` says to set the class's ``mapping_file``.

    Cached per file and modification time, so an edited file is picked up by the next
    connector built.
    """
    if path is None:
        from hub.plugins import builtin_connector_names

        if connector not in builtin_connector_names():
            # The hub's mappings/ holds the built-ins' files only: pointing there would
            # send a plugin's author looking in the wrong place.
            raise ConnectorConfigError(
                connector,
                "the connector class sets no mapping_file; set `mapping_file` on the "
                "connector class to the mapping file shipped in the plugin's package, e.g. "
                f'mapping_file = Path(__file__).with_name("{connector}.toml") '
                "(see docs/connector-authoring.md, section 5)",
            )
    resolved = path or bundled_path("mappings") / f"{connector}.toml"
    try:
        mtime = resolved.stat().st_mtime_ns
    except FileNotFoundError:
        return load_mapping(resolved, connector=connector)
    return _cached(resolved, mtime, connector)
