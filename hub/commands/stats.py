"""`evi stats`: follow-up statistics per period, split by gender, for the steering group."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from hub.commands.common import hub_from, print_json
from hub.errors import InputError
from hub.ledger.service import ACTOR_HELP, cli_actor
from hub.stats.csvfile import render_csv
from hub.stats.followup import followup_report
from hub.stats.period import parse_period, swedish_day
from hub.stats.text import render_text

ASKER_HELP = ACTOR_HELP + " The log records the role `steering_group`."


def stats(
    ctx: typer.Context,
    from_: str = typer.Option(
        ..., "--from", metavar="YYYY-MM-DD", help="First day of the period (included)."
    ),
    to: str = typer.Option(
        ..., "--to", metavar="YYYY-MM-DD", help="Last day of the period (included)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    as_csv: bool = typer.Option(
        False, "--csv", help="Print the report as CSV (table, row, women, men, total)."
    ),
    actor: str | None = typer.Option(None, "--actor", help=ASKER_HELP),
) -> None:
    """Follow-up statistics for a period: new, active and closed participants (closures also
    by outcome and reason), each split into women, men and total.

    A person's records count only where their consent covers the purpose `evaluation`; the
    gate's decision for each person, permit or deny, goes to the transfer log. Counts of 1
    to 4 are shown as `<5` (`null` with `suppressed: true` in JSON) so that no one can be
    singled out. A period must not start after today; one that ends after today is
    counted up to today. See docs/statistics.md.
    """
    if as_json and as_csv:
        raise InputError("give --json or --csv, not both")
    now = datetime.now(UTC)
    start, end = parse_period(from_, to, ("--from", "--to"), today=swedish_day(now))
    report = followup_report(hub_from(ctx), start, end, actor=cli_actor(actor), at=now)
    if as_json:
        print_json(report.model_dump(mode="json"))
    elif as_csv:
        typer.echo(render_csv(report), nl=False)
    else:
        typer.echo(render_text(report))


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)
