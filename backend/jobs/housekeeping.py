"""Housekeeping: delete idempotency records older than KABINET_IDEMPOTENCY_DAYS.

Every decision with an `Idempotency-Key` leaves its first answer behind; without expiry
the table grows by every visa, resolution and signature for as long as the region runs.
Records are deleted oldest first in batches, each its own short transaction, claimed
with `FOR UPDATE SKIP LOCKED` like every job, so several processes share the work.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import delete, select

from backend.db.models import IdempotencyRecord
from backend.settings import Settings

if TYPE_CHECKING:
    from backend.jobs.registry import Sessions

log = structlog.get_logger("kabinet.jobs")
BATCH = 5_000


async def expire_idempotency(settings: Settings, sessions: Sessions, at: dt.datetime) -> bool:
    cutoff = at - dt.timedelta(days=settings.idempotency_days)
    total = 0
    while True:
        async with sessions() as session:
            batch = (
                select(IdempotencyRecord.id)
                .where(IdempotencyRecord.created_at < cutoff)
                .order_by(IdempotencyRecord.created_at)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            result = await session.execute(
                delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(batch)),
                execution_options={"synchronize_session": False},
            )
            await session.commit()
        deleted = int(result.rowcount)  # type: ignore[attr-defined]
        total += deleted
        if deleted < BATCH:
            break
    if total:
        log.info("idempotency_expired", records=total, before=cutoff.isoformat())
    return total > 0
