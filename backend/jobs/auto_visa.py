"""Auto-visa: approvers who did not answer by the end of a stage's working-day deadline get
an automatic `approved` visa (marked auto, audited, with an outbox event) and the route
moves on. Each stage is its own transaction, so one broken route does not stop the rest.

A stage is claimed by locking its route row with `FOR UPDATE OF routes SKIP LOCKED`: the
route row is the lock every decision on the route takes first (see routes.services), so
the job takes locks in the same order as a visa from a tablet (no deadlock), a route being
decided right now is passed over until the next run, and two workers never auto-visa one
stage twice."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import select

from backend.db.models import Route, RouteStage
from backend.domain.routes.services import auto_visa_stage
from backend.settings import Settings

if TYPE_CHECKING:
    from backend.jobs.registry import Sessions

log = structlog.get_logger("kabinet.jobs")


async def auto_visa(settings: Settings, sessions: Sessions, at: dt.datetime) -> bool:
    did = False
    # Stages looked at in this run that did not move (another worker finished them first,
    # or they failed): never claimed twice in one run, so the loop ends.
    passed: set[uuid.UUID] = set()
    while True:
        async with sessions() as session:
            query = (
                select(RouteStage.id)
                .join(Route, Route.id == RouteStage.route_id)
                .where(
                    RouteStage.state == "active",
                    RouteStage.due_at <= at,
                    Route.state == "active",
                )
                .order_by(RouteStage.due_at, RouteStage.id)
                .limit(1)
                .with_for_update(of=Route, skip_locked=True)
            )
            if passed:
                query = query.where(RouteStage.id.not_in(passed))
            stage_id = await session.scalar(query)
            if stage_id is None:
                break
            try:
                put = await auto_visa_stage(session, stage_id, at, settings.timezone)
                await session.commit()
            except Exception:
                await session.rollback()
                log.exception("auto_visa_failed", stage_id=str(stage_id))
                put = 0
        if put:
            did = True
            log.info("auto_visa", stage_id=str(stage_id), visas=put)
        else:
            passed.add(stage_id)
    return did
