"""`evi consent …`: register (one, or many with import), show, list, withdraw, block, export.

The commands are thin: they parse options, call :class:`hub.consent.service.ConsentService`
and print. Errors are :class:`hub.errors.EviError` and reach the user through ``hub.cli``;
a bad consent file prints one ``error:`` line per problem.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from hub.commands.common import area_app, hub_from, info, party_option, pnr_option, print_json
from hub.consent.bulk import BulkEvidenceRefusedError
from hub.consent.document import rfc3339, submission_document
from hub.consent.errors import ConsentFileError
from hub.consent.fhir import export_bundle
from hub.consent.files import describe, load_submission
from hub.consent.receipt import render_receipt
from hub.consent.service import ConsentService
from hub.consent.views import ConsentHistory, PersonConsents, VersionView, listing_entry
from hub.errors import InputError
from hub.ledger.service import ACTOR_HELP, cli_actor
from hub.model.consent import ConsentSubmission, PaperEvidence
from hub.model.identity import (
    identity_input,
)
from hub.model.vocab import Category

consent_app = area_app(
    help="Consents (samtycken): register or import, show, list, withdraw, block, mark a "
    "protected identity, export.",
    no_args_is_help=True,
)

PNR_HELP = "The person's personnummer or samordningsnummer, in any usual written form."


class ExportFormat(StrEnum):
    FHIR = "fhir"
    RECEIPT = "receipt"


def _party(text: str | None) -> str | None:
    return None if text is None else party_option(text, "--party")


def _aware(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{option} {text!r}: write a time like 2026-01-31T00:00:00Z") from None
    if value.tzinfo is None:
        raise InputError(f"{option} {text!r}: give a timezone, e.g. 2026-01-31T00:00:00Z")
    try:
        return value.astimezone(UTC)  # stored in UTC: an offset can carry it past 9999
    except OverflowError:
        raise InputError(
            f"{option} {text!r}: out of range once its offset is applied; give a time "
            "between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z"
        ) from None


def _load(file: Path) -> Any:
    try:
        return load_submission(file)
    except ConsentFileError as exc:
        for problem in exc.problems:
            typer.echo(f"error: {exc.source}: {problem}", err=True)
        typer.echo(f"error: {exc.source}: nothing was stored; fix the file and run again", err=True)
        raise typer.Exit(exc.exit_code) from None


@consent_app.command("register")
def register_consent(
    ctx: typer.Context,
    file: Path = typer.Option(..., "--file", "-f", help="Consent file, .json or .toml."),
    actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
) -> None:
    """Verify a consent's evidence and register it (or, with 'amends', a new version).

    Prints the consent id; see docs/consent.md for the file format.
    """
    submission = _load(file)
    hub = hub_from(ctx)
    result = ConsentService(hub).register(submission, actor=cli_actor(actor))
    what = "amended" if result.version > 1 else "registered"
    info(
        f"{what} consent {result.consent_id} version {result.version} for participant "
        f"{result.participant}; evidence: {result.verdict.detail}"
    )
    if submission.valid_until <= datetime.now(UTC):  # kept as a record; never in force
        info(
            f"note: its period ended {rfc3339(submission.valid_until)}, before now: it records "
            "a consent that was given, but permits nothing from now on"
        )
    typer.echo(result.consent_id)


@consent_app.command("import")
def import_consents(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="JSON Lines: one consent document (JSON) per line."),
    actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
) -> None:
    """Register many new consents from a JSON Lines file: all of them, or none.

    Each line is what a .json file for `evi consent register` holds; blank lines are
    skipped. Every evidence is verified first; one bad line stores nothing. Amendments
    are not taken here (use `evi consent register`). Prints one consent id per line.
    """
    lines = _load_lines(file)
    hub = hub_from(ctx)
    try:
        done = ConsentService(hub).register_many([s for _, s in lines], actor=cli_actor(actor))
    except BulkEvidenceRefusedError as exc:
        for position, why in exc.refused:
            typer.echo(f"error: {file}:{lines[position][0]}: {why}", err=True)
        typer.echo(f"error: {file}: nothing was stored; fix those lines and run again", err=True)
        raise typer.Exit(exc.exit_code) from None
    for result in done:
        typer.echo(result.consent_id)
    info(f"registered {len(done)} consent{'' if len(done) == 1 else 's'} from {file}")


def _load_lines(file: Path) -> list[tuple[int, ConsentSubmission]]:
    """``(line number, submission)`` for each non-blank line; every bad line is reported."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{file}: does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{file}: cannot be read as UTF-8 text ({exc})") from None
    loaded: list[tuple[int, ConsentSubmission]] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line, object_pairs_hook=_no_repeated_keys)
        except ValueError as exc:
            problems.append(f"{number}: not a JSON object on one line ({exc})")
            continue
        try:
            submission = ConsentSubmission.model_validate(data)
        except ValidationError as exc:
            problems.extend(f"{number}: {p}" for p in describe(exc))
            continue
        evidence = submission.evidence
        if isinstance(evidence, PaperEvidence) and evidence.scan is not None:
            scan = evidence.scan.expanduser()  # relative to the file, as with --file
            scan = scan if scan.is_absolute() else file.parent / scan
            evidence = evidence.model_copy(update={"scan": scan})
            submission = submission.model_copy(update={"evidence": evidence})
        loaded.append((number, submission))
    if not loaded and not problems:
        problems.append("1: the file holds no consent")
    if problems:
        for problem in problems:
            typer.echo(f"error: {file}:{problem}", err=True)
        typer.echo(f"error: {file}: nothing was stored; fix the file and run again", err=True)
        raise typer.Exit(InputError.exit_code)
    return loaded


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # As with --file: two equal keys in a consent hide a mistake.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"{key} is given twice; keep one")
        result[key] = value
    return result


@consent_app.command("document")
def document(
    file: Path = typer.Option(..., "--file", "-f", help="Consent file, .json or .toml."),
) -> None:
    """Print the canonical consent document: the exact bytes an e-signature must cover.

    The evidence section of the file is ignored here (it may still be a placeholder).
    """
    submission = _load(file)
    sys.stdout.buffer.write(submission_document(submission))
    sys.stdout.buffer.flush()


@consent_app.command("show")
def show(
    ctx: typer.Context,
    pnr: str = pnr_option(PNR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON with every version."),
    actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
) -> None:
    """Show one person's consents with every version, withdrawals and blocks (the look-up
    is recorded in the transfer log first, by pseudonym)."""
    identity = identity_input(pnr)
    person = ConsentService(hub_from(ctx)).person(identity, actor=cli_actor(actor))
    if as_json:
        print_json(_person_json(person))
        return
    _print_person(person)


@consent_app.command("list")
def list_consents(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the JSON array (docs/consent.md)."),
    actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
) -> None:
    """List every consent: one line each, or the JSON array other tools read (with the
    numbers). The listing is recorded in the transfer log first."""
    what = "list json" if as_json else "list"
    # Printed as read, a chunk at a time: a caseload of 50,000 is never held whole.
    entries = ConsentService(hub_from(ctx)).stream_listing(
        actor=cli_actor(actor), what=what, numbers=as_json
    )
    if as_json:
        _print_json_array(entries)
        return
    shown = False
    for e in entries:
        # The pseudonym, never the number: a list must not show who people are.
        typer.echo(
            f"{e['id']}  v{e['version']}  {e['status']:<9}  {e['participant']}  "
            f"{','.join(e['parties'])}  until {e['valid_until']}"
        )
        shown = True
    if not shown:
        info("no consents registered")


def _print_json_array(elements: Iterable[Any]) -> None:
    """Write ``elements`` as one JSON array, one element at a time: the same bytes as
    ``print_json(list(elements))`` without holding them all."""
    out = sys.stdout
    opening = "[\n  "
    for element in elements:
        text = json.dumps(element, ensure_ascii=False, indent=2, default=str)
        # JSON escapes line breaks inside strings: every newline here is layout.
        out.write(opening + text.replace("\n", "\n  "))
        opening = ",\n  "
    out.write("[]\n" if opening == "[\n  " else "\n]\n")


@consent_app.command("withdraw")
def withdraw(
    ctx: typer.Context,
    pnr: str = pnr_option(PNR_HELP),
    party: str | None = typer.Option(None, "--party", help="Withdraw only for this party."),
    category: Category | None = typer.Option(
        None, "--category", help="Withdraw only this category."
    ),
    consent: str | None = typer.Option(
        None, "--consent", help="Only this consent id (default: all in force)."
    ),
    actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
) -> None:
    """Withdraw consent from now on: whole, or only a party and/or a category."""
    identity = identity_input(pnr)
    done = ConsentService(hub_from(ctx)).withdraw(
        identity,
        actor=cli_actor(actor),
        party=_party(party),
        category=category,
        consent_id=consent,
    )
    scope = _scope(party, category.value if category else None)
    for w in done:
        info(f"withdrew {scope} of consent {w.consent_id} from {rfc3339(w.at)}")


@consent_app.command("block")
def block(
    ctx: typer.Context,
    pnr: str = pnr_option(PNR_HELP),
    party: str | None = typer.Option(None, "--party", help="Block this party (default: all)."),
    category: Category | None = typer.Option(
        None, "--category", help="Block this category (default: all)."
    ),
    until: str | None = typer.Option(
        None, "--until", help="End of the block, e.g. 2026-01-31T00:00:00Z (default: open)."
    ),
    actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
) -> None:
    """Record a block (spärr) from now on; a block always beats a consent. Prints its id."""
    identity = identity_input(pnr)
    view = ConsentService(hub_from(ctx)).block(
        identity,
        actor=cli_actor(actor),
        party=_party(party),
        category=category,
        until=_aware(until, "--until"),
    )
    info(f"blocked {_scope(view.party, view.category)} from {rfc3339(view.valid_from)}")
    typer.echo(view.id)


@consent_app.command("unblock")
def unblock(
    ctx: typer.Context,
    pnr: str = pnr_option(PNR_HELP),
    block_id: str = typer.Option(..., "--block", help="The block id (see `evi consent show`)."),
    actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
) -> None:
    """Lift a block from now on, at the person's request."""
    identity = identity_input(pnr)
    view = ConsentService(hub_from(ctx)).lift_block(identity, block_id, actor=cli_actor(actor))
    info(f"lifted block {view.id} at {rfc3339(view.valid_until or view.valid_from)}")


@consent_app.command("protect")
def protect(
    ctx: typer.Context,
    pnr: str = pnr_option(PNR_HELP),
    lift: bool = typer.Option(False, "--lift", help="Take the mark away (staff only)."),
    actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
) -> None:
    """Mark a person as having a protected identity (skyddad identitet) before any authority
    reports it: from now the number goes to no one, and the next sync cancels their
    registrations. Logged."""
    identity = identity_input(pnr)
    changed = ConsentService(hub_from(ctx)).protect(identity, actor=cli_actor(actor), lift=lift)
    if not changed:
        info("nothing to change: " + ("not marked" if lift else "already marked"))
    elif lift:
        info("protected identity lifted: the next sync registers them by number again")
    else:
        info(
            "protected identity marked: the number goes to no one from now; the next sync "
            "cancels their registrations at the authorities"
        )


@consent_app.command("export")
def export(
    ctx: typer.Context,
    pnr: str = pnr_option(PNR_HELP),
    fmt: ExportFormat = typer.Option(..., "--format", help="fhir (R5 Bundle) or receipt."),
    actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
) -> None:
    """Export a person's consents as a FHIR R5 Bundle or a Swedish receipt for the person
    (recorded in the transfer log first, by pseudonym)."""
    identity = identity_input(pnr)
    what = f"export {fmt.value}"
    person = ConsentService(hub_from(ctx)).person(identity, actor=cli_actor(actor), what=what)
    if fmt is ExportFormat.FHIR:
        sys.stdout.write(json.dumps(export_bundle(person), ensure_ascii=False, indent=2) + "\n")
    else:
        sys.stdout.write(render_receipt(person))


def _scope(party: str | None, category: str | None) -> str:
    if party is None and category is None:
        return "everything"
    parts = []
    if party is not None:
        parts.append(f"party {party}")
    if category is not None:
        parts.append(f"category {category}")
    return " and ".join(parts)


def _person_json(person: PersonConsents) -> dict[str, Any]:
    return {
        "participant": person.pseudonym,
        "pnr": None if person.protected_identity else person.identity.number,
        "protected_identity": person.protected_identity,
        "consents": [
            {**listing_entry(person, c), "history": [_version_json(v) for v in c.versions]}
            for c in person.consents
        ],
        "blocks": [
            {
                "id": b.id,
                "party": b.party,
                "category": b.category,
                "from": rfc3339(b.valid_from),
                "until": rfc3339(b.valid_until) if b.valid_until else None,
                "lifted_at": rfc3339(b.lifted_at) if b.lifted_at else None,
            }
            for b in person.blocks
        ],
    }


def _version_json(v: VersionView) -> dict[str, Any]:
    return {
        "version": v.version,
        "parties": list(v.parties),
        "categories": list(v.categories),
        "purposes": list(v.purposes),
        "valid_from": rfc3339(v.valid_from),
        "valid_until": rfc3339(v.valid_until),
        "informed_by": v.informed_by,
        "informed_at": rfc3339(v.informed_at),
        "recorded_at": rfc3339(v.recorded_at),
        "recorded_by": v.recorded_by,
        "evidence": v.evidence_kind,
        "evidence_detail": v.evidence_detail,
    }


def _print_person(person: PersonConsents) -> None:
    flag = " (protected identity)" if person.protected_identity else ""
    typer.echo(f"participant {person.pseudonym}{flag}")
    if not person.consents:
        typer.echo("no consents")
    for c in person.consents:
        _print_consent(c)
    if person.blocks:
        typer.echo("blocks:")
        for b in person.blocks:
            until = rfc3339(b.valid_until) if b.valid_until else "open"
            typer.echo(
                f"  {b.id}  party {b.party or 'any'}  category {b.category or 'any'}  "
                f"{rfc3339(b.valid_from)} → {until}"
            )


def _print_consent(c: ConsentHistory) -> None:
    typer.echo(f"consent {c.consent_id}: {c.status}, version {c.current.version} shown")
    for v in c.versions:
        typer.echo(
            f"  v{v.version}  parties {', '.join(v.parties)}; categories "
            f"{', '.join(v.categories)}; purposes {', '.join(v.purposes)}"
        )
        typer.echo(
            f"      valid {rfc3339(v.valid_from)} → {rfc3339(v.valid_until)}; recorded "
            f"{rfc3339(v.recorded_at)} by {v.recorded_by}; evidence {v.evidence_kind}"
        )
    for w in c.withdrawals:
        earlier = (
            f" (of v{w.up_to_version} and before)" if w.up_to_version < c.current.version else ""
        )
        typer.echo(f"  withdrawn {_scope(w.party, w.category)} from {rfc3339(w.at)}{earlier}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to `app`."""
    app.add_typer(consent_app, name="consent")
