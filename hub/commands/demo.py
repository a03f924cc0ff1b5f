"""`evi demo`: the main job on the embedded default, with sandbox authorities."""

from __future__ import annotations

import typer

from hub.commands.common import hub_from
from hub.demo.run import DemoOptions, run_demo


def demo(
    ctx: typer.Context,
    seed: int = typer.Option(1, "--seed", help="Seed of the sandbox population and caseload."),
    setup_only: bool = typer.Option(
        False, "--setup-only", help="Prepare the caseload and connectors; do not sync."
    ),
    population: int = typer.Option(
        500, "--population", min=10, max=20_000, help="People in the sandbox population."
    ),
    sandbox_url: list[str] = typer.Option(
        [], "--sandbox-url", help="NAME=URL: reach that authority's sandbox over HTTP (repeatable)."
    ),
) -> None:
    """Sandbox authorities, a caseload, one nightly sync, its report and a log check.

    Sets up $EVI_HOME (default ./var) with the four sandbox authorities and a synthetic
    caseload, runs one nightly sync, prints the report and verifies the transfer log.
    Safe to run again: each run is another night."""
    options = DemoOptions(
        seed=seed, setup_only=setup_only, sandbox_urls=list(sandbox_url), population=population
    )
    code = run_demo(hub_from(ctx), options, typer.echo)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
