"""record referring_party

Who referred the person, kept beside each stored referral (the body's
``referring_party``) with a partial index, so routing reads a person's referring parties
from the index alone instead of every stored record of theirs and each referral's JSON:
that read grew with the records kept (measured by bench/year.py: 0.06 s a night at two
months, 1.1-1.5 s at a year).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILLED = sa.text("referring_party IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("referring_party", sa.String(length=32), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        taken = "CAST(body AS json) ->> 'referring_party'"
    else:
        taken = "json_extract(body, '$.referring_party')"
    op.execute(f"UPDATE record SET referring_party = {taken} WHERE kind = 'referral'")  # noqa: S608 - no input
    op.create_index(
        "ix_record_referring_party",
        "record",
        ["participant_id", "referring_party"],
        unique=False,
        sqlite_where=FILLED,
        postgresql_where=FILLED,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_record_referring_party",
        table_name="record",
        sqlite_where=FILLED,
        postgresql_where=FILLED,
    )
    # Not batch mode: on SQLite that copies the table, and dropping the old one fails on
    # the outbox's foreign key to it. Both databases drop a column in place (SQLite 3.35+).
    op.execute("ALTER TABLE record DROP COLUMN referring_party")
