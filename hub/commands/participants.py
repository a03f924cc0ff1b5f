"""`evi participants …`: one person's consolidated status, as one party may see it, and
retention of the records of people whose consent has ended.

The web pages and JSON API (:mod:`hub.web.casework`) are the caseworker's way in; `status`
is the same view for an administrator or a script, logged the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from hub.casework.held import held_data
from hub.casework.status import StatusView, Viewer, consolidated_status
from hub.casework.summary import StatusEntry
from hub.clock import SWEDEN, parse_cut_off, swedish_minute
from hub.commands.common import (
    area_app,
    hub_from,
    info,
    party_option,
    pnr_option,
    print_json,
    whole_file,
)
from hub.connector.registry import known_parties
from hub.consent.retention import people, purge_records
from hub.errors import InputError
from hub.files import check_target
from hub.ledger.service import ACTOR_HELP, cli_actor
from hub.model.identity import identity_input
from hub.text.records import details_text
from hub.text.terminal import shown_json, shown_lines

participants_app = area_app(
    help="Look a person up as one party may see them; make their register extract; remove "
    "records once consent has ended.",
    no_args_is_help=True,
)


def _line(day: str, origin: str, kind: str, details: str) -> str:
    return f"  {day:<10}  {origin:<8} {kind:<13} {details}".rstrip()


_HEADING = _line("updated", "from", "kind", "details")
"""Over every list of records: ``updated`` is the day (Swedish date) the authority last
changed the record."""


def _entry(entry: StatusEntry) -> str:
    details = details_text("en", entry.body)  # as the page shows it: words, no empty fields
    day = entry.updated_at.astimezone(SWEDEN).date().isoformat()
    return _line(day, entry.origin, entry.kind, details)


def _records(title: str, entries: list[StatusEntry]) -> None:
    typer.echo(title)
    if entries:
        typer.echo(_HEADING)
    for entry in entries:
        typer.echo(_entry(entry))


def _print(view: StatusView) -> None:
    flag = " (protected identity: handle with care)" if view.protected_identity else ""
    typer.echo(f"participant {view.participant}{flag}")
    typer.echo(f"as {view.viewer_party} may see it at {swedish_minute(view.at, zone=True)}")
    s = view.summary
    if s.state == "open":
        typer.echo(f"case: open, referred {s.referred_on} by {s.referred_by}")
    elif s.state == "closed":
        typer.echo(f"case: closed {s.closed_on} ({s.closure_reason}), outcome {s.outcome}")
    else:
        typer.echo("case: nothing this party may see about a referral or closure")
    if s.latest_plan is not None:
        plan = s.latest_plan
        typer.echo(f"latest plan: established {plan.body.get('established_on')} ({plan.origin})")
    _records(f"current benefits: {len(s.current_benefits)}", s.current_benefits)
    _records(f"ongoing interventions: {len(s.ongoing_interventions)}", s.ongoing_interventions)
    _records(
        f"records shown: {len(view.entries)}, newest first (updated: the day the authority "
        "last changed the record, Swedish date)",
        view.entries,
    )


@participants_app.command("status")
def status(
    ctx: typer.Context,
    pnr: str = pnr_option("The person's personnummer or samordningsnummer."),
    party: str = typer.Option(
        ..., "--as", help="The viewer's party (af, fk, kommun, region or team)."
    ),
    actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the view as JSON."),
) -> None:
    """Show what the person's consent lets PARTY see now, across every authority; the view
    and every gate decision behind it are written to the transfer log, at the time they
    happen. When PARTY may see nothing, the answer (exit 1) is the same as for a number the
    hub does not know: whether the person is a participant is itself secret."""
    viewer = Viewer(actor=cli_actor(actor), party=party_option(party, "--as"))
    identity = identity_input(pnr)
    hub = hub_from(ctx)
    parties = known_parties(hub.plugins)
    if viewer.party not in parties:  # or every gate decision would be logged for no one
        raise InputError(
            f"--as {viewer.party!r}: not a party of this hub; one of {', '.join(parties)}"
        )
    view = consolidated_status(hub, identity, viewer)
    if as_json:
        print_json(view.model_dump(mode="json"))
        return
    _print(view)


@participants_app.command("purge")
def purge(
    ctx: typer.Context,
    ended_before: str = typer.Option(
        ...,
        "--consent-ended-before",
        help="Remove the records of people whose consent ended before this day began in "
        "Sweden (YYYY-MM-DD), and the people themselves once nothing else about them is left.",
    ),
    yes: bool = typer.Option(False, "--yes", help="Really remove (without it: only count)."),
    actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
) -> None:
    """Retention: remove the stored records of everyone whose every consent has ended
    (expired, or withdrawn as a whole) before the date, and remove entirely (participant,
    consents, withdrawals, blocks, subscriptions) those with no stored records and no
    readable log entries left; each person is logged by pseudonym."""
    when = parse_cut_off(ended_before, "--consent-ended-before")
    done = purge_records(hub_from(ctx), when, cli_actor(actor), confirmed=yes)
    info(
        f"removed {done.records} stored records ({done.outbox_rows} outbox rows) of "
        f"{people(done.people)} whose consent ended before {ended_before}, and "
        f"{people(done.removed)} entirely (participant and consents); each removal is in "
        "the transfer log"
    )


@participants_app.command("extract")
def extract(
    ctx: typer.Context,
    pnr: str = pnr_option("The person's personnummer or samordningsnummer."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of plain Swedish text."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here, not stdout."),
    actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
) -> None:
    """Register extract (GDPR art. 15): everything the hub stores about the person, for an
    official to review and hand over; making it is logged. Transfers: `evi log extract`."""
    if output is not None:
        check_target(output)  # before the extract is made and logged
    held = held_data(hub_from(ctx), identity_input(pnr), cli_actor(actor))
    text = (
        shown_json(json.dumps(held.as_json(), ensure_ascii=False, indent=2)) + "\n"
        if as_json
        else shown_lines(held.as_text())
    )
    if output is None:
        typer.echo(text, nl=False)
    else:
        with whole_file(output) as out:
            out.write(text)
    consents = len(held.consents.consents)
    info(
        f"extract of {len(held.records)} stored records and {consents} "
        f"consent{'' if consents == 1 else 's'} made (recorded in the transfer log); what was "
        "disclosed to whom: `evi log extract`"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(participants_app, name="participants")
