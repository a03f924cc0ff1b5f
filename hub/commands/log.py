"""`evi log …`: review, verify, prove and export the transfer log (see docs/ledger.md).

Personal identity numbers given with ``--pnr`` become the participant pseudonym here and
go no further; only `evi log extract` prints the number, for the person themself.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable
from contextlib import nullcontext
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from hub.clock import cut_off_text, parse_cut_off
from hub.commands.common import area_app, hub_from, info, pnr_option, print_json, whole_file
from hub.errors import InputError
from hub.files import check_target
from hub.ledger import service
from hub.ledger.event import Action
from hub.ledger.fhir import bundle_chunks
from hub.ledger.records import EXPORT_FIELDS, EntryRecord, LedgerQuery
from hub.ledger.sample import MAX_SAMPLE, Sample
from hub.ledger.sample import sample as draw_sample
from hub.ledger.service import MAX_SEARCH, REVIEWER_ROLE
from hub.ledger.signing import NoteVerifier
from hub.ledger.verify import LedgerIntegrityError
from hub.model.identity import identity_input
from hub.spreadsheet import cell_text
from hub.text.terminal import shown, shown_json, shown_lines

log_app = area_app(help="Review, verify, prove and export the transfer log.", no_args_is_help=True)


class SearchFormat(StrEnum):
    TABLE = "table"
    JSONL = "jsonl"
    CSV = "csv"


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    FHIR = "fhir"


class ExtractFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def _query(
    ctx: typer.Context,
    pnr: str | None,
    participant: str | None,
    since: str | None,
    until: str | None,
    party: str | None = None,
    decision: str | None = None,
    action: Action | None = None,
    limit: int | None = None,
    after: int | None = None,
    by: str | None = None,
    correlation: str | None = None,
) -> LedgerQuery:
    if pnr is not None and participant is not None:
        raise InputError("give --pnr or --participant, not both")
    if decision is not None and decision not in ("permit", "deny"):
        raise InputError("--decision is 'permit' or 'deny'")
    if pnr is not None:
        identity = identity_input(pnr)  # validate before opening anything
        participant = hub_from(ctx).keys.pseudonym(identity.number)
    start, end = service.parse_span(since, until, ("--from", "--to"))
    return LedgerQuery(
        participant=participant,
        since=start,
        until=end,
        party=party,
        decision=decision,
        action=action,
        actor=by,
        correlation=correlation,
        limit=limit,
        after=after,
    )


BY_HELP = (
    "Entries made by this actor: a web user (anna.af), a CLI run's --actor name, its OS user "
    "(cli:root), a job (evi-sync)."
)
PNR_HELP = "Personnummer or samordningsnummer; searched for as its pseudonym."
FROM_HELP = (
    "From the start of this day in Sweden (YYYY-MM-DD), as `evi log purge` reads its date; "
    "or an ISO 8601 time (with an offset that instant, without one Swedish time)."
)
TO_HELP = (
    "Up to the start of this day in Sweden (YYYY-MM-DD), not including it: --to 2026-03-02 "
    "ends with 1 March; or an ISO 8601 time, as --from."
)


@log_app.command("search")
def search(
    ctx: typer.Context,
    pnr: str | None = pnr_option(PNR_HELP, required=False),
    participant: str | None = typer.Option(None, "--participant", help="A pseudonym (p-…)."),
    since: str | None = typer.Option(None, "--from", help=FROM_HELP),
    until: str | None = typer.Option(None, "--to", help=TO_HELP),
    party: str | None = typer.Option(None, "--party", help="Origin or recipient (af, fk, …)."),
    decision: str | None = typer.Option(None, "--decision", help="permit or deny."),
    action: Action | None = typer.Option(None, "--action", help="Kind of entry."),
    by: str | None = typer.Option(None, "--by", help=BY_HELP),
    correlation: str | None = typer.Option(
        None,
        "--correlation",
        help="Entries of one statistics report, look-up, sync run or transfer (its id).",
    ),
    after: int | None = typer.Option(
        None,
        "--after",
        min=0,
        max=2**62,
        help="Only entries after this seq: the last one a search printed.",
    ),
    limit: int = typer.Option(
        1000, "--limit", min=1, help=f"At most this many entries (at most {MAX_SEARCH:,})."
    ),
    fmt: SearchFormat = typer.Option(SearchFormat.TABLE, "--format", help="Output format."),
) -> None:
    """Find entries, oldest first. The search is itself recorded in the log, before any
    entry is read. For more than --limit, go on with --after (the last seq printed)."""
    if limit > MAX_SEARCH:
        raise InputError(
            f"--limit: at most {MAX_SEARCH:,} entries a search; narrow the search (--from, "
            "--to, …), go on from the last one with --after SEQ, or use `evi log export`"
        )
    query = _query(
        ctx, pnr, participant, since, until, party, decision, action, limit, after, by, correlation
    )
    records = service.search(hub_from(ctx), query, service.cli_actor())
    if fmt is SearchFormat.JSONL:
        count = _write_jsonl(records, sys.stdout)
    elif fmt is SearchFormat.CSV:
        count = _write_csv(records, sys.stdout)
    else:
        count = _print_table(list(records))
    info(f"{count} entries (this search was recorded in the log)")


def _write_jsonl(records: Iterable[EntryRecord], out: TextIO) -> int:
    """Each record as one line, written as it comes; how many."""
    count = 0
    for record in records:
        out.write(shown_json(json.dumps(record.export_line(), ensure_ascii=False)) + "\n")
        count += 1
    return count


def _write_csv(records: Iterable[EntryRecord], out: TextIO) -> int:
    """A heading, then each record as a row, written as it comes; how many."""
    writer = csv.writer(out)
    writer.writerow(["seq", *EXPORT_FIELDS])
    count = 0
    for record in records:
        line = record.export_line()
        writer.writerow(
            [line["seq"]]
            + [
                cell_text(";".join(line[name]) if name == "categories" else line[name])
                for name in EXPORT_FIELDS
            ]
        )
        count += 1
    return count


def _cell(value: Any) -> Text:
    """A table cell for the terminal: plain text, never Rich markup (``[link=…]`` would
    make a link), with what a terminal would act on escaped (:func:`shown`)."""
    return Text(shown(value))


def _print_table(records: list[EntryRecord]) -> int:
    table = Table(show_lines=False)
    for column in (
        "seq",
        "time",
        "action",
        "decision",
        "reason",
        "outcome",
        "origin",
        "recipient",
        "categories",
        "participant",
        "actor",
    ):
        table.add_column(column)
    for record in records:
        line = record.export_line()
        table.add_row(
            _cell(line["seq"]),
            _cell(line["time"]),
            _cell(line["action"]) + (" (purged)" if record.purged else ""),
            _cell(line["decision"]),
            _cell(line["reason"]),
            _cell(line["outcome"]),
            _cell(line["origin"]),
            _cell(line["recipient"]),
            _cell(",".join(line["categories"])),
            _cell(line["participant"]),
            _cell(line["actor"]),
        )
    Console(file=sys.stdout, width=200).print(table)
    return len(records)


@log_app.command("sample")
def sample(
    ctx: typer.Context,
    size: int = typer.Option(..., "--size", min=1, max=MAX_SAMPLE, help="How many entries."),
    since: str | None = typer.Option(None, "--from", help=FROM_HELP),
    until: str | None = typer.Option(None, "--to", help=TO_HELP),
    party: str | None = typer.Option(None, "--party", help="Origin or recipient (af, fk, …)."),
    decision: str | None = typer.Option(None, "--decision", help="permit or deny."),
    action: Action | None = typer.Option(None, "--action", help="Kind of entry, e.g. view."),
    by: str | None = typer.Option(None, "--by", help=BY_HELP),
    seed: int | None = typer.Option(
        None, "--seed", min=0, help="Draw the same sample again (default: a new random seed)."
    ),
    fmt: SearchFormat = typer.Option(SearchFormat.TABLE, "--format", help="Output format."),
) -> None:
    """A random sample of entries for review (stickprov), e.g. a month's caseworker views:
    `--action view --from 2026-11-01 --to 2026-12-01 --size 25`. The draw is recorded in
    the log with its seed; the same filters, period and seed draw the same sample again."""
    query = _query(ctx, None, None, since, until, party, decision, action, by=by)
    drawn = draw_sample(hub_from(ctx), query, size, service.cli_actor(), REVIEWER_ROLE, seed)
    if fmt is SearchFormat.JSONL:
        _write_jsonl(drawn.entries, sys.stdout)
    elif fmt is SearchFormat.CSV:
        _write_csv(drawn.entries, sys.stdout)
    else:
        _print_table(drawn.entries)
    info(
        f"{len(drawn.entries)} of {drawn.matching} matching entries, drawn at random with seed "
        f"{drawn.seed} (this draw was recorded in the log; {_again(drawn, query)})"
    )


def _again(drawn: Sample, query: LedgerQuery) -> str:
    """How to draw the same sample again, or why it cannot be yet: only over a period that
    had ended (``--to``) before the draw, which entries recorded later cannot join."""
    seed = drawn.seed
    if query.until is None:
        return (
            f"give --to to draw it again: without it, entries recorded later change what "
            f"--seed {seed} draws"
        )
    to = cut_off_text(query.until)
    if not drawn.closed:
        return (
            f"--to {to} has not passed yet, so entries recorded before it can still change "
            f"what --seed {seed} draws; draw once it has passed to be able to draw it again"
        )
    return f"the same filters with --seed {seed} --to {to} draw it again"


@log_app.command("export")
def export(
    ctx: typer.Context,
    fmt: ExportFormat = typer.Option(..., "--format", help="jsonl or fhir (AuditEvent Bundle)."),
    since: str | None = typer.Option(None, "--from", help=FROM_HELP),
    until: str | None = typer.Option(None, "--to", help=TO_HELP),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here, not stdout."),
) -> None:
    """Export entries as JSON Lines or a FHIR AuditEvent Bundle. The export is recorded."""
    query = _query(ctx, None, None, since, until)
    records = service.export(hub_from(ctx), query, service.cli_actor(), fmt.value)
    with whole_file(output) if output else nullcontext(sys.stdout) as out:
        if fmt is ExportFormat.JSONL:
            count = _write_jsonl(records, out)
        else:
            count = 0
            for chunk in bundle_chunks(records):
                out.write(shown_json(chunk))
                count += 1
            count -= 2  # the bundle's opening and closing pieces
    info(f"exported {count} entries (this export was recorded in the log)")


@log_app.command("extract")
def extract(
    ctx: typer.Context,
    pnr: str = pnr_option("The person's personnummer/samordningsnummer."),
    fmt: ExtractFormat = typer.Option(ExtractFormat.TEXT, "--format", help="text or json."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write here (whole, mode 0600), not stdout."
    ),
) -> None:
    """The person's own log extract (registerutdrag), each entry with its inclusion proof."""
    identity = identity_input(pnr)
    if output is not None:
        check_target(output)  # before the extract is made and logged
    result = service.extract(hub_from(ctx), identity, service.cli_actor())
    if fmt is ExtractFormat.JSON:
        text = shown_json(json.dumps(result.as_json(), ensure_ascii=False, indent=2, default=str))
        text += "\n"
    else:
        text = shown_lines(result.as_text())
    with whole_file(output) if output else nullcontext(sys.stdout) as out:
        out.write(text)
    _warn_witnesses(result.checkpoint.witness_failures)


def _warn_witnesses(failures: list[str]) -> None:
    for failure in failures:
        info(f"warning: witness plugin failed: {failure}; the checkpoint itself is stored")


@log_app.command("verify")
def verify(
    ctx: typer.Context,
    pubkey: str | None = typer.Option(
        None, "--pubkey", help="Verifier key (from `evi log pubkey`) instead of this hub's key."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Recompute every leaf, subtree, root and checkpoint; exit 4 naming the first bad entry."""
    given = NoteVerifier.from_vkey(pubkey) if pubkey else None
    report = service.verify(hub_from(ctx), given)
    if as_json:
        print_json(report.as_json())
    else:
        typer.echo(
            f"entries: {report.size}, checkpoints: {report.checkpoints}, "
            f"witness copies: {report.witness_copies}"
        )
        for first, last in report.purged:
            typer.echo(f"purged (content removed by retention, hashes kept): {first}-{last}")
        for name, seq in report.superseded:
            typer.echo(f"superseded witness copy {name}: by the restore recorded at entry {seq}")
        for problem in report.problems:
            typer.echo(f"BAD {problem}")
        if report.unlisted:
            typer.echo(f"BAD … and {report.unlisted} more problem(s) not listed")
    worst = report.first_problem
    if worst is not None:
        raise LedgerIntegrityError(f"the ledger does not verify: {worst}")
    info("the ledger verifies")


@log_app.command("checkpoint")
def checkpoint(
    ctx: typer.Context,
    new: bool = typer.Option(False, "--new", help="Sign a new checkpoint first."),
) -> None:
    """Print the latest signed checkpoint (C2SP tlog-checkpoint note)."""
    hub = hub_from(ctx)
    if new:
        written = service.new_checkpoint(hub)
        _warn_witnesses(written.witness_failures)
    sys.stdout.write(service.current_checkpoint(hub).note)


@log_app.command("pubkey")
def pubkey(
    ctx: typer.Context,
    pem: bool = typer.Option(False, "--pem", help="PEM (SubjectPublicKeyInfo) instead of vkey."),
) -> None:
    """Print the key that verifies checkpoints (C2SP signed-note vkey, or PEM)."""
    key = service.verifier(hub_from(ctx))
    sys.stdout.write(key.pem() if pem else key.vkey + "\n")


@log_app.command("prove")
def prove(
    ctx: typer.Context,
    seq: int = typer.Option(..., "--seq", min=0, help="Sequence number of the entry."),
    size: int | None = typer.Option(
        None, "--size", min=1, help="Tree size (default: latest checkpoint)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the documented JSON object."),
) -> None:
    """Inclusion proof (RFC 9162 §2.1.3) of one entry."""
    proof = service.prove(hub_from(ctx), seq, size)
    if as_json:
        print_json(proof)
    else:
        typer.echo(f"entry {proof['leaf_index']} in the tree of size {proof['tree_size']}:")
        for digest in proof["hashes"]:
            typer.echo(f"  {digest}")


@log_app.command("consistency")
def consistency(
    ctx: typer.Context,
    first: int = typer.Option(..., "--from", min=0, help="Earlier tree size."),
    second: int | None = typer.Option(
        None, "--to", min=0, help="Later size (default: latest checkpoint)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the documented JSON object."),
) -> None:
    """Consistency proof (RFC 9162 §2.1.4) that the later tree extends the earlier one."""
    proof = service.consistency(hub_from(ctx), first, second)
    if as_json:
        print_json(proof)
    else:
        typer.echo(f"size {proof['from']} -> size {proof['to']}:")
        for digest in proof["hashes"]:
            typer.echo(f"  {digest}")


@log_app.command("purge")
def purge(
    ctx: typer.Context,
    before: str = typer.Option(
        ...,
        "--before",
        help="Purge entries recorded before this day began in Sweden (YYYY-MM-DD), as "
        "`evi participants purge` reads its date; at least [ledger] minimum_retention_days "
        "before today (see `evi config show`).",
    ),
    yes: bool = typer.Option(
        False, "--yes", help="Really purge (without it: say how many, change nothing, exit 2)."
    ),
) -> None:
    """Retention: remove the content of old entries, keeping their hashes so the log verifies.
    Entries keep their content for at least [ledger] minimum_retention_days (evi.toml or
    EVI_LEDGER__MINIMUM_RETENTION_DAYS): a --before within them is refused."""
    when = parse_cut_off(before, "--before")
    result = service.purge(hub_from(ctx), when, service.cli_actor(), confirmed=yes)
    _warn_witnesses(result.checkpoint.witness_failures)
    info(
        f"purged {result.purged} entries recorded before {cut_off_text(when)}; checkpoint of size "
        f"{result.checkpoint.size} signed first"
    )


@log_app.command("restored")
def restored(
    ctx: typer.Context,
    yes: bool = typer.Option(
        False, "--yes", help="Really record it (without it: name the copies, exit 2)."
    ),
    actor: str | None = typer.Option(None, "--actor", help=service.ACTOR_HELP),
) -> None:
    """After restoring the database from a backup: record it, naming the witness copies the
    restored log no longer matches, so `evi log verify` lists them as superseded instead
    of failing, and `evi sync` and `evi worker` start again. Logged."""
    from hub.ledger.restore import record_restore

    done = record_restore(hub_from(ctx), service.cli_actor(actor), confirmed=yes)
    if done is None:
        info("nothing to record: every witness copy matches the stored log")
        return
    info(
        f"recorded as entry {done.seq}: {len(done.copies)} witness copies superseded "
        f"({', '.join(done.copies)}); a new checkpoint was signed"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(log_app, name="log")
