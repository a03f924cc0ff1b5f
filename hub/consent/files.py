"""Read a consent file (JSON or TOML, see docs/consent.md) into a :class:`ConsentSubmission`.

Every problem in a file is reported, one line each: the field, the value that was given
and why it is refused. The ``pnr`` value is never repeated, and anything else that looks
like an identity number is masked too, since these lines reach terminals and logs.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hub.consent.errors import ConsentFileError
from hub.model.consent import ConsentSubmission, PaperEvidence

_NUMBER_LIKE = re.compile(r"\d{6,8}[-+]?\d{4}")
_HIDDEN_FIELDS = {"pnr"}
_EVIDENCE_TAGS = {"paper", "signature", "plugin"}
_MAX_SHOWN = 60

_FRIENDLY = {
    "missing": "required field is missing",
    "extra_forbidden": "unknown field; remove it or check its spelling",
    "timezone_aware": "needs a timezone offset, e.g. 2025-01-01T00:00:00Z",
    "datetime_from_date_parsing": "needs a date and time with offset, e.g. 2025-01-01T00:00:00Z",
    "datetime_type": "needs a date and time with offset, e.g. 2025-01-01T00:00:00Z",
    "uuid_parsing": "must be the id of the consent being amended (a UUID)",
    "uuid_type": "must be the id of the consent being amended (a UUID)",
}

_FIELD_FRIENDLY = {
    ("string_pattern_mismatch", "evidence.document_sha256"): (
        "must be the SHA-256 of the scan as 64 hexadecimal characters (sha256sum FILE)"
    ),
    ("too_short", "evidence.certificates"): "needs the signer's certificate (PEM) first",
    ("too_short", "categories"): "needs at least one category",
    ("too_short", "purposes"): "needs at least one purpose",
    ("enum", "categories"): (
        "not a category; use identity, referral, assessment, plan, intervention, benefit, "
        "health or outcome"
    ),
    ("enum", "purposes"): "not a purpose; use coordination or evaluation",
    ("model_type", "pnr"): 'must be the number as text, in quotes: "YYYYMMDD-NNNN"',
    ("tuple_type", "parties"): 'must be a list, e.g. ["kommun", "af", "team"]',
    ("tuple_type", "categories"): 'must be a list, e.g. ["referral", "plan"]',
    ("tuple_type", "purposes"): 'must be a list, e.g. ["coordination"]',
}


def load_submission(path: Path) -> ConsentSubmission:
    """Parse and validate ``path``; raises :class:`ConsentFileError` listing every problem."""
    source = str(path)
    data = _read(path)
    try:
        submission = ConsentSubmission.model_validate(data)
    except ValidationError as exc:
        raise ConsentFileError(source, describe(exc)) from None
    evidence = submission.evidence
    if isinstance(evidence, PaperEvidence) and evidence.scan is not None:
        scan = evidence.scan.expanduser()
        if not scan.is_absolute():
            scan = path.parent / scan
        submission = submission.model_copy(
            update={"evidence": evidence.model_copy(update={"scan": scan})}
        )
    return submission


def _read(path: Path) -> dict[str, Any]:
    source = str(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise ConsentFileError(
            source, ["file: the name must end in .json or .toml, so the format is clear"]
        )
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConsentFileError(source, ["file: does not exist"]) from None
    except OSError as exc:
        raise ConsentFileError(source, [f"file: cannot be read ({exc.strerror})"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConsentFileError(source, ["file: is not UTF-8 text"]) from None
    try:
        data: Any = (
            tomllib.loads(text)
            if suffix == ".toml"
            else json.loads(text, object_pairs_hook=_no_duplicate_keys)
        )
    except tomllib.TOMLDecodeError as exc:
        raise ConsentFileError(source, [f"file: is not valid TOML ({exc})"]) from None
    except _DuplicateKeyError as exc:
        raise ConsentFileError(source, [f"{exc.key}: given twice; keep one"]) from None
    except json.JSONDecodeError as exc:
        raise ConsentFileError(source, [f"file: is not valid JSON ({exc})"]) from None
    if not isinstance(data, dict):
        raise ConsentFileError(source, ["file: must hold one object (a table of fields)"])
    return data


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # JSON silently keeps the last of two equal keys; in a consent that hides a mistake.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def describe(exc: ValidationError) -> list[str]:
    """One line per problem: ``field = value: why`` (``pnr`` shown as ``pnr: why``)."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = [p for i, p in enumerate(err["loc"]) if not _is_union_tag(err["loc"], i)]
        field = _field_name(loc) or _model_level_field(err["msg"])
        why = _FRIENDLY.get(err["type"], _plain(err["msg"]))
        if err["type"] == "datetime_from_date_parsing" and "outside expected range" in err["msg"]:
            why = "no such date (the day or month is out of range)"  # e.g. 2025-02-30
        why = _FIELD_FRIENDLY.get((err["type"], field.split("[")[0]), why)
        if err["type"] in ("missing", "extra_forbidden") or field.split(".")[0] in _HIDDEN_FIELDS:
            lines.append(f"{field}: {why}")
        else:
            value = err.get("input")
            if not loc and isinstance(value, dict) and field in value:
                value = value[field]  # a check across fields: show the field it names
            lines.append(f"{field} = {_shown(value)}: {why}")
    return lines


def _is_union_tag(loc: tuple[int | str, ...], index: int) -> bool:
    return index == 1 and loc[0] == "evidence" and loc[index] in _EVIDENCE_TAGS


def _field_name(loc: list[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def _model_level_field(message: str) -> str:
    return "valid_until" if "valid_until" in message else "(file)"


def _plain(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "{…}"
    text = json.dumps(value, ensure_ascii=False, default=str)
    text = _NUMBER_LIKE.sub("<number not shown>", text)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"
