"""Auto-visa: approvers who did not answer by the end of a stage's working-day deadline get
an automatic `approved` visa (marked auto, audited, with an outbox event) and the route
moves on. Each stage is its own transaction, so one broken route does not stop the rest."""

from __future__ import annotations

import datetime as dt

import structlog
from sqlalchemy import select

from backend.db.engine import make_engine, make_sessionmaker
from backend.db.models import RouteStage
from backend.domain.routes.services import auto_visa_stage
from backend.settings import Settings

log = structlog.get_logger("kabinet.jobs")
BATCH = 500


async def auto_visa(settings: Settings, at: dt.datetime) -> bool:
    engine = make_engine(settings)
    sessions = make_sessionmaker(engine)
    did = False
    try:
        async with sessions() as session:
            due = list(
                await session.scalars(
                    select(RouteStage.id)
                    .where(RouteStage.state == "active", RouteStage.due_at <= at)
                    .order_by(RouteStage.due_at)
                    .limit(BATCH)
                )
            )
        for stage_id in due:
            async with sessions() as session:
                put = await auto_visa_stage(session, stage_id, at, settings.timezone)
                await session.commit()
            if put:
                did = True
                log.info("auto_visa", stage_id=str(stage_id), visas=put)
    finally:
        await engine.dispose()
    return did
