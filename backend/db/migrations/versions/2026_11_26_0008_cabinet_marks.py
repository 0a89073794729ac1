"""cabinet_marks: a change counter per cabinet, for cached folder counts

Folder counts read every open item of a cabinet (7,000 for the governor of a
1,000,000-document region: 0.5-0.9 ms of PostgreSQL CPU per request). A counter bumped
by each transaction that changes the cabinet's items lets a process serve the counts it
computed last until the counter moves: one primary-key range read per request. The
counter is the sum of up to 8 slots, each transaction bumping one at random: in the
benchmark a third of all visas are the legal department's, and one row per cabinet
made them queue on its lock through every commit.

Positions without a row count as version 0: untouched since their items were loaded.
`kabinet demo` fills an empty database only, before any process could have cached a
count, so it writes no marks.

Deploying: stop every process running the code before this revision (web workers and
job runners) before the new code serves; an old process changes items without bumping
marks, and the new ones would serve its cabinets' counts stale for up to the cache's
10 minutes. The same holds for item changes made by hand in SQL.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 22:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cabinet_marks",
        sa.Column("position_id", sa.Uuid(), nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("version", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(["position_id"], ["positions.id"]),
        sa.PrimaryKeyConstraint("position_id", "slot"),
    )
    # Cabinets that already have items: their counts may be cached from now on, so they
    # start at 1 rather than at the implicit 0 of a cabinet nothing has touched.
    op.execute(
        "INSERT INTO cabinet_marks (position_id, slot, version) "
        "SELECT DISTINCT position_id, 0, 1 FROM cabinet_items"
    )


def downgrade() -> None:
    op.drop_table("cabinet_marks")
