"""The published follow-up report: what the steering group sees, as text or JSON.

Only suppressed figures ever reach these models (see :mod:`hub.stats.suppression`): a
count of 1 to 4 is ``null`` with ``suppressed: true``, so the JSON cannot leak it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SMALL_CELL_LIMIT = 5
"""Counts from 1 up to (not including) this are suppressed; 0 is shown."""

CHANGES = (
    "A withdrawal, an expired consent, retention (records removed) or a record that arrives "
    "later changes the figures, those of earlier periods too: the same report made again "
    "may differ."
)
"""Why a report made again may differ: every output says it (docs/statistics.md)."""

Rule = Literal["small_cell", "complementary"]


class _Published(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Cell(_Published):
    """One published count. ``rule`` says why a suppressed count is hidden: ``small_cell``
    (1 to 4 people) or ``complementary`` (hidden too, so that a small cell cannot be
    worked out by subtraction from its row or column)."""

    count: int | None = Field(ge=0)
    suppressed: bool = False
    rule: Rule | None = None

    def text(self) -> str:
        """``<5`` for a small cell, ``x`` for a complementary one, else the count."""
        if self.rule == "small_cell":
            return f"<{SMALL_CELL_LIMIT}"
        if self.suppressed:
            return "x"
        return str(self.count)


class Split(_Published):
    """One measure split by gender (from the identity number); ``total`` is everyone."""

    women: Cell
    men: Cell
    total: Cell


class FollowUpReport(_Published):
    """Follow-up statistics for one period, both days inclusive (docs/statistics.md)."""

    period_start: date
    period_end: date = Field(
        description="the last day counted: the period's, or the day the report was made "
        "when the period ends after it"
    )
    period_end_requested: date | None = Field(
        default=None,
        description="the period's last day as asked, when it is after the day the report "
        "was made (the period is then counted up to that day); else null",
    )
    purpose: Literal["evaluation"] = "evaluation"
    decided_at: datetime = Field(
        description="the instant the consent gate was asked about: the figures are decided "
        "under the consents in force and the records stored then"
    )
    changes: str = Field(default=CHANGES, description="why the same report made again may differ")
    correlation_id: str = Field(description="ties the report's gate decisions in the ledger")
    small_cell_limit: int = SMALL_CELL_LIMIT
    new: Split = Field(description="people whose case opened in the period")
    active: Split = Field(description="people whose case was open on a day of the period")
    closed: Split = Field(description="people whose case closed in the period")
    closed_by_outcome: dict[str, Split]
    closed_by_reason: dict[str, Split]
    left_out: Cell = Field(
        description="people in the period whose records the gate permitted for evaluation, "
        "if any, put them in no figure"
    )
    partly_left_out: Cell = Field(
        description="people counted from some of their records while the gate did not "
        "permit others: their figures may be incomplete"
    )
