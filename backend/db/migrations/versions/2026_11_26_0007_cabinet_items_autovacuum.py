"""cabinet_items vacuumed after every 5,000 changed or inserted rows (PostgreSQL)

Folder counts are an index-only scan over a cabinet's open items; every page changed
since the table's last vacuum is read from the heap as well. At the default thresholds
(20 % of the table) a 1,000,000-document region's cabinet_items (1.2 M rows) would wait
for ~250,000 changes, and the governor's counts read ~1,600 heap pages more in the
meantime (1.1-1.3 -> 1.7-2.0 ms of PostgreSQL CPU per request, docs/PERFORMANCE.md).
A fixed threshold keeps the visibility map fresh; each vacuum skips the all-visible pages
and, with few dead rows, the index pass too (PostgreSQL 14+), so it stays cheap.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 20:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SETTINGS = (
    "autovacuum_vacuum_scale_factor",
    "autovacuum_vacuum_threshold",
    "autovacuum_vacuum_insert_scale_factor",
    "autovacuum_vacuum_insert_threshold",
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return  # SQLite has no autovacuum thresholds to set
    settings = "autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000"
    if (bind.dialect.server_version_info or (0,)) >= (13,):
        # Vacuums after inserts (they set the pages all-visible too) exist since 13.
        settings += (
            ", autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 5000"
        )
    op.execute(f"ALTER TABLE cabinet_items SET ({settings})")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    names = _SETTINGS if (bind.dialect.server_version_info or (0,)) >= (13,) else _SETTINGS[:2]
    op.execute(f"ALTER TABLE cabinet_items RESET ({', '.join(names)})")
