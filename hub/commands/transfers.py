"""`evi transfers failed|retry`: dead letters and putting them back in the queue."""

from __future__ import annotations

import typer

from hub.commands.common import area_app, hub_from, info, print_json
from hub.sync.history import dead_letters, retry

transfers_app = area_app(
    help="Inspect and retry transfers that could not be delivered.", no_args_is_help=True
)


@transfers_app.command("failed")
def failed(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Dead letters: transfers given up after their attempts, with the reason."""
    rows = dead_letters(hub_from(ctx))
    if as_json:
        print_json(rows)
        return
    if not rows:
        info("no failed transfers")
    for row in rows:
        typer.echo(
            f"{row['id']:>6}  {row['origin']}->{row['recipient']}  {row['category']:<12} "
            f"attempts={row['attempts']}  {row['reason']}"
        )


@transfers_app.command("retry")
def retry_cmd(
    ctx: typer.Context,
    ids: list[int] = typer.Argument(None, help="IDs from `evi transfers failed`."),
    all_: bool = typer.Option(False, "--all", help="Retry every failed transfer."),
) -> None:
    """Put failed transfers back in the queue; the next sync or worker delivers them."""
    count = retry(hub_from(ctx), None if all_ else list(ids or []))
    info(f"{count} transfer(s) queued again")


def register(app: typer.Typer) -> None:
    app.add_typer(transfers_app, name="transfers")
