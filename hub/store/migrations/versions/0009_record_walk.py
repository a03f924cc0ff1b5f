"""record walk

Each referral's and closure's place in its person's walk of cases (its date, then 0 for a
referral, 1 for a closure) as a column the database works out from ``kind`` and ``body``,
under a partial index ``(participant_id, walk)``: the follow-up statistics find who had
a case in a period with two looks per person instead of reading every stored record of
everyone and its JSON (bench/city.py, bench/year.py: that statement grew with every
record kept, whatever the period asked). SQLite adds the column VIRTUAL (ALTER TABLE
cannot add a STORED one; the index keeps the values), PostgreSQL STORED (it rewrites the
table once). The expression is ``hub.store.tables.sync.WALK``'s, per dialect.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WALK = {
    "sqlite": (
        "CASE WHEN kind = 'referral' THEN json_extract(body, '$.received_on') || '0' "
        "WHEN kind = 'closure' THEN json_extract(body, '$.closed_on') || '1' END"
    ),
    "postgresql": (
        "CASE WHEN kind = 'referral' THEN (body ->> 'received_on') || '0' "
        "WHEN kind = 'closure' THEN (body ->> 'closed_on') || '1' END"
    ),
}
FILLED = sa.text("walk IS NOT NULL")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    walk = sa.Computed(sa.text(WALK[dialect]), persisted=dialect == "postgresql")
    op.add_column("record", sa.Column("walk", sa.String(), walk))
    op.create_index(
        "ix_record_walk",
        "record",
        ["participant_id", "walk"],
        unique=False,
        sqlite_where=FILLED,
        postgresql_where=FILLED,
    )


def downgrade() -> None:
    op.drop_index("ix_record_walk", table_name="record", sqlite_where=FILLED, postgresql_where=FILLED)
    # Not batch mode: on SQLite that copies the table, and dropping the old one fails on
    # the outbox's foreign key to it. Both databases drop a column in place (SQLite 3.35+).
    op.execute("ALTER TABLE record DROP COLUMN walk")
