"""Reminders before deadlines and overdue notices, each sent once.

- `reminders`: on the last working day before a deadline (region calendar and time zone),
  a `reminder.deadline_tomorrow` event for every active visa stage (to its approvers who have
  not answered) and every open assignment (to its executor) due by the next working day.
  A deadline on a weekend counts as "tomorrow" on the Friday before it.
- `overdue`: an `assignment.overdue` event once an open assignment's deadline day is over
  (the same rule as the card's `overdue` flag), to the executor and the controller.

Rows are claimed in batches with `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)`
that stamps `reminded_at` / `overdue_notified_at`; the events go into the outbox in the same
transaction, so a notice is written exactly once even with several workers.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.clock import region_today
from backend.db.models import Approval, Assignment, RouteStage
from backend.domain.calendar.services import add_working_days, end_of_day
from backend.domain.notifications.outbox import emit
from backend.settings import Settings

if TYPE_CHECKING:
    from backend.jobs.registry import Sessions

log = structlog.get_logger("kabinet.jobs")
BATCH = 200


async def _claim(
    session: AsyncSession, model: Any, stamp: Any, where: list[Any], at: dt.datetime, *cols: Any
) -> list[Any]:
    """Stamp up to BATCH rows matching `where` whose `stamp` is NULL; return `cols` of them."""
    pick = (
        select(model.id)
        .where(stamp.is_(None), *where)
        .order_by(model.id)
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    )
    return list(
        (
            await session.execute(
                update(model)
                .where(model.id.in_(pick.scalar_subquery()), stamp.is_(None))
                .values({stamp.key: at})
                .returning(*cols)
                .execution_options(synchronize_session=False)
            )
        ).all()
    )


async def _stage_reminders(
    session: AsyncSession, at: dt.datetime, after: dt.datetime, until: dt.datetime
) -> int:
    rows = await _claim(
        session,
        RouteStage,
        RouteStage.reminded_at,
        [RouteStage.state == "active", RouteStage.due_at > after, RouteStage.due_at <= until],
        at,
        RouteStage.id,
        RouteStage.deadline,
    )
    if not rows:
        return 0
    waiting: dict[Any, list[tuple[Any, Any]]] = {}
    for stage_id, document_id, position_id in (
        await session.execute(
            select(Approval.stage_id, Approval.document_id, Approval.position_id)
            .where(
                Approval.stage_id.in_([r[0] for r in rows]),
                Approval.decision.is_(None),
                Approval.stale.is_(False),
            )
            .order_by(Approval.stage_id, Approval.id)
        )
    ).all():
        waiting.setdefault(stage_id, []).append((document_id, position_id))
    for stage_id, deadline in rows:
        asked = waiting.get(stage_id)
        if not asked:
            continue
        emit(
            session,
            "reminder.deadline_tomorrow",
            at,
            document_id=asked[0][0],
            positions=[p for _, p in asked],
            folder="visa",
            deadline=deadline,
            stage_id=stage_id,
        )
    return len(rows)


async def _assignment_reminders(
    session: AsyncSession, at: dt.datetime, today: dt.date, until: dt.date
) -> int:
    rows = await _claim(
        session,
        Assignment,
        Assignment.reminded_at,
        [Assignment.state == "open", Assignment.deadline > today, Assignment.deadline <= until],
        at,
        Assignment.id,
        Assignment.document_id,
        Assignment.executor_position_id,
        Assignment.deadline,
    )
    for assignment_id, document_id, executor, deadline in rows:
        emit(
            session,
            "reminder.deadline_tomorrow",
            at,
            document_id=document_id,
            positions=[executor],
            folder="execute",
            deadline=deadline,
            assignment_id=assignment_id,
        )
    return len(rows)


async def reminders(settings: Settings, sessions: Sessions, at: dt.datetime) -> bool:
    total = 0
    while True:
        async with sessions() as session:
            today = region_today(settings.timezone, at)
            until = await add_working_days(session, today, 1)
            n = await _stage_reminders(
                session,
                at,
                end_of_day(today, settings.timezone),
                end_of_day(until, settings.timezone),
            )
            n += await _assignment_reminders(session, at, today, until)
            await session.commit()
        total += n
        if n == 0:
            break
    if total:
        log.info("reminders", items=total)
    return total > 0


async def overdue(settings: Settings, sessions: Sessions, at: dt.datetime) -> bool:
    total = 0
    while True:
        async with sessions() as session:
            today = region_today(settings.timezone, at)
            rows = await _claim(
                session,
                Assignment,
                Assignment.overdue_notified_at,
                [Assignment.state == "open", Assignment.deadline < today],
                at,
                Assignment.id,
                Assignment.document_id,
                Assignment.executor_position_id,
                Assignment.controller_position_id,
                Assignment.on_control,
                Assignment.deadline,
            )
            for assignment_id, document_id, executor, controller, control, deadline in rows:
                emit(
                    session,
                    "assignment.overdue",
                    at,
                    document_id=document_id,
                    positions=[executor, *([controller] if control and controller else [])],
                    folder="execute",
                    deadline=deadline,
                    assignment_id=assignment_id,
                )
            await session.commit()
        total += len(rows)
        if not rows:
            break
    if total:
        log.info("overdue", assignments=total)
    return total > 0
