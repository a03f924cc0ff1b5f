"""`evi transfers failed|retry`: dead letters and putting them back in the queue."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

import typer

from hub.commands.common import area_app, hub_from, info, party_option, print_json
from hub.errors import InputError
from hub.sync.history import (
    PAGE_MAX,
    PAGE_ROWS,
    dead_letter_summary,
    dead_letters,
    page_size,
    queue_summary,
)
from hub.sync.history import retry as retry_dead
from hub.text.terminal import shown

if TYPE_CHECKING:
    from hub.context import Hub

ID_MAX = 2**63 - 1
"""The largest id a database's BIGINT holds (as the API's ``after`` and ``ids``)."""

transfers_app = area_app(
    help="Inspect and retry transfers that could not be delivered.", no_args_is_help=True
)


@transfers_app.command("failed")
def failed(
    ctx: typer.Context,
    as_json: bool = typer.Option(
        False, "--json", help="The page as a JSON array (with --summary: the counts as JSON)."
    ),
    summary_only: bool = typer.Option(
        False, "--summary", help="Only the counts by recipient and reason, no transfers."
    ),
    recipient: str | None = typer.Option(
        None, "--recipient", help="Only the transfers to this recipient (e.g. fk)."
    ),
    reason: str | None = typer.Option(
        None, "--reason", help="Only those that failed with exactly this reason, as listed."
    ),
    after: int = typer.Option(
        0,
        "--after",
        min=0,
        max=ID_MAX,
        help="The page after this id: the last one the previous page showed.",
    ),
    limit: int = typer.Option(
        PAGE_ROWS, "--limit", help=f"At most this many transfers (1 to {PAGE_MAX})."
    ),
) -> None:
    """Dead letters: first how many, by recipient and reason; then one page of them, oldest
    first, with the reason each was given up on."""
    page_size(limit, option="--limit", after="--after ID")
    if summary_only and (recipient, reason, after, limit) != (None, None, 0, PAGE_ROWS):
        raise InputError(
            "--summary counts every dead letter; --recipient, --reason, --after and --limit "
            "choose the page of them, which --summary leaves out: give one or the other"
        )
    if recipient is not None:
        recipient = party_option(recipient, "--recipient")
    hub = hub_from(ctx)
    if as_json and summary_only:
        print_json(dead_letter_summary(hub))
        return
    if as_json:
        rows, more = dead_letters(hub, after=after, limit=limit, recipient=recipient, reason=reason)
        if not rows:
            _known_recipient(hub, recipient)
        print_json(rows)
        _next_page(rows, more, recipient, reason, limit, as_json=True)
        return
    summary = dead_letter_summary(hub)
    if not summary["total"]:
        info("no failed transfers")
        return
    _print_summary(summary)
    if summary_only:
        return
    rows, more = dead_letters(hub, after=after, limit=limit, recipient=recipient, reason=reason)
    if not rows:
        _known_recipient(hub, recipient)
    typer.echo("")
    if not rows:
        info("no failed transfers match" + (" after that id" if after else ""))
    for row in rows:
        typer.echo(
            f"{row['id']:>6}  {row['origin'] + '->' + row['recipient']:<16}  "
            f"{row['category']:<12} "
            f"attempts={row['attempts']}  {shown(row['reason'])}"
        )
    _next_page(rows, more, recipient, reason, limit, as_json=False)


def _print_summary(summary: dict[str, Any]) -> None:
    by_recipient = ", ".join(f"{r['recipient']} {r['count']}" for r in summary["recipients"])
    typer.echo(f"{summary['total']} failed transfer(s): {by_recipient}")
    typer.echo(f"{'count':>7}  {'to':<8} {'last failed (UTC)':<20}  reason")
    for group in summary["reasons"]:
        last = group["last_failed_at"]
        when = f"{last[:19]}Z" if last else "-"  # stored in UTC
        typer.echo(
            f"{group['count']:>7}  {group['recipient']:<8} {when:<20}  {shown(group['reason'])}"
        )
    if summary["more_reasons"]:
        info(
            f"(the {len(summary['reasons'])} largest groups only: "
            "`evi transfers failed --summary --json` has them too; narrow with --recipient)"
        )


def _next_page(
    rows: list[dict[str, Any]],
    more: bool,
    recipient: str | None,
    reason: str | None,
    limit: int,
    *,
    as_json: bool,
) -> None:
    """Say on stderr how to get the next page, when there is one."""
    if not more:
        return
    words = ["evi", "transfers", "failed", "--after", str(rows[-1]["id"])]
    if recipient is not None:
        words += ["--recipient", recipient]
    if reason is not None:
        words += ["--reason", reason]
    if limit != PAGE_ROWS:
        words += ["--limit", str(limit)]
    if as_json:
        words.append("--json")
    info(f"more: {shlex.join(words)}")


@transfers_app.command("queued")
def queued(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="The counts as JSON."),
) -> None:
    """Transfers waiting to go, per recipient: how many, how many an authority already failed
    to take (retried later; dead letters once attempts run out), since when and when next;
    then the retrying ones by their last error."""
    summary = queue_summary(hub_from(ctx))
    if as_json:
        print_json(summary)
        return
    if not summary["total"]:
        info("no transfers waiting")
        return
    per = ", ".join(f"{r['recipient']} {r['count']}" for r in summary["recipients"])
    typer.echo(f"{summary['total']} transfer(s) waiting: {per}")
    typer.echo(f"  {'to':<8} {'waiting':>8} {'retrying':>8}  {'since (UTC)':<20}  next (UTC)")
    for r in summary["recipients"]:
        since, due = (
            f"{t[:19]}Z" if t else "-" for t in (r["waiting_since"], r["next_attempt_at"])
        )
        typer.echo(f"  {r['recipient']:<8} {r['count']:>8} {r['retrying']:>8}  {since:<20}  {due}")
    if summary["errors"]:
        typer.echo("retrying, by the last error:")
        for e in summary["errors"]:
            typer.echo(f"  {e['count']:>7}  {e['recipient']:<8} {shown(e['last_error'])}")


@transfers_app.command("retry")
def retry_cmd(
    ctx: typer.Context,
    ids: list[int] = typer.Argument(
        None, min=1, max=ID_MAX, help="IDs from `evi transfers failed`."
    ),
    all_: bool = typer.Option(False, "--all", help="Retry every failed transfer."),
    recipient: str | None = typer.Option(
        None, "--recipient", help="With --all: only those to this recipient (e.g. fk)."
    ),
) -> None:
    """Put failed transfers back in the queue; the next sync or worker delivers them."""
    if ids and all_:
        raise InputError(
            "give the IDs to retry or --all, not both: `evi transfers retry ID …` or "
            "`evi transfers retry --all`"
        )
    if recipient is not None and not all_:
        raise InputError(
            "--recipient goes with --all: `evi transfers retry --all --recipient NAME`"
        )
    if recipient is not None:
        recipient = party_option(recipient, "--recipient")
    hub = hub_from(ctx)
    count = retry_dead(hub, None if all_ else list(ids or []), recipient=recipient)
    if not count:
        _known_recipient(hub, recipient)
    info(f"{count} transfer(s) queued again" + (f" to {recipient}" if recipient else ""))


def _known_recipient(hub: Hub, recipient: str | None) -> None:
    """Refuse a ``--recipient`` that matched nothing because no party has that name (a typo
    answered "none" looks like good news). A connector since removed still has its dead
    letters listed: the check runs only when nothing matched."""
    if recipient is None:
        return
    from hub.connector.registry import known_parties

    parties = known_parties(hub.plugins)
    if recipient not in parties:
        raise InputError(
            f"--recipient {recipient!r}: not a party of this hub; one of {', '.join(parties)}"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(transfers_app, name="transfers")
