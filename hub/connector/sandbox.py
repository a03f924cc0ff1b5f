"""What a sandbox is asked to be: seed, population and fault knobs.

A sandbox plays an authority's API for the demo and the tests (see docs/connectors.md).
The hub knows only these settings; each connector builds its own sandbox from them
(:meth:`hub.connector.base.Connector.sandbox_app`), so ``evi sandbox serve NAME`` works for
any installed connector that ships one.

Faults are drawn per request from a random generator seeded with ``seed``, so a run with
the same settings sees the same faults in the same order; ``fault_budget`` caps how many
are injected in total (``fail_rate=1, fault_budget=2``: the first two requests fail).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

Rate = float


class SandboxSettings(BaseModel):
    """Settings of one sandbox; everything but ``state_dir`` is part of its behaviour."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(default=1, description="Seed of the synthetic population and faults.")
    population: int = Field(default=500, ge=1, description="Number of synthetic people.")
    records_per_person: int = Field(
        default=3, ge=0, le=10_000, description="Records the authority holds about each person."
    )
    all_subscribed: bool = Field(
        default=False,
        description="Answer about every person, as if all were subscribed (benchmarks).",
    )
    latency_ms: int = Field(default=0, ge=0, le=60_000, description="Delay of every answer.")
    fail_rate: Rate = Field(default=0.0, ge=0, le=1, description="Share of 503 answers.")
    rate_limit_rate: Rate = Field(default=0.0, ge=0, le=1, description="Share of 429 answers.")
    retry_after_seconds: int = Field(
        default=1, ge=0, le=86_400, description="Retry-After sent with a 429 (0: none)."
    )
    timeout_rate: Rate = Field(
        default=0.0, ge=0, le=1, description="Share of requests that stall (client times out)."
    )
    stall_seconds: float = Field(default=30.0, ge=0, description="How long a stall lasts.")
    malformed_rate: Rate = Field(
        default=0.0, ge=0, le=1, description="Share of answers with malformed JSON."
    )
    invalid_record_rate: Rate = Field(
        default=0.0, ge=0, le=1, description="Share of records that violate the API's schema."
    )
    unknown_code_rate: Rate = Field(
        default=0.0, ge=0, le=1, description="Share of records carrying a code no mapping knows."
    )
    fault_budget: int | None = Field(
        default=None, ge=0, description="Most faults injected in total (none: unlimited)."
    )
    state_dir: Path | None = Field(
        default=None,
        description="Where the authority's side keeps subscriptions and received pushes "
        "(``$EVI_HOME/sandbox/NAME`` when served); none keeps them in memory.",
    )
