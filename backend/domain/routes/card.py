"""The route as the card shows it (no import of documents.services: the card calls this)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from backend.db.fastread import fetch_rows
from backend.db.lookups import position_titles, user_names
from backend.db.models import (
    Approval,
    Route,
    RouteApprover,
    RouteSignatory,
    RouteStage,
)
from backend.domain.routes import schemas


async def route_out(session: AsyncSession, route: Route) -> schemas.RouteOut:
    # Route moves are written past the ORM (routes/services.py), so what the session may
    # hold of this route is reloaded, never trusted.
    fresh = {"populate_existing": True}
    stages = list(
        await session.scalars(
            select(RouteStage).where(RouteStage.route_id == route.id).order_by(RouteStage.index),
            execution_options=fresh,
        )
    )
    stage_ids = [s.id for s in stages]
    approvals = (
        list(
            await session.scalars(
                select(Approval)
                .where(Approval.route_id == route.id)
                .order_by(Approval.asked_at, Approval.id),
                execution_options=fresh,
            )
        )
        if stage_ids
        else []
    )
    planned = (
        (
            await session.execute(
                select(RouteApprover.stage_id, RouteApprover.position_id).where(
                    RouteApprover.stage_id.in_(stage_ids)
                )
            )
        ).all()
        if stage_ids
        else []
    )
    signatories = list(
        await session.scalars(
            select(RouteSignatory)
            .where(RouteSignatory.route_id == route.id)
            .order_by(RouteSignatory.order),
            execution_options=fresh,
        )
    )
    pids = {a.position_id for a in approvals} | {p for _, p in planned}
    pids |= {s.position_id for s in signatories}
    titles = await position_titles(session, pids)
    uids = {a.decided_by_id for a in approvals if a.decided_by_id}
    names = await user_names(session, uids)
    out_stages = []
    for st in stages:
        rows = [a for a in approvals if a.stage_id == st.id]
        asked = {a.position_id for a in rows}
        approvers = [
            schemas.ApproverOut(
                position_id=a.position_id,
                title=titles.get(a.position_id, ""),
                decision=a.decision,
                comment=a.comment,
                decided_at=a.decided_at,
                decided_by=names.get(a.decided_by_id) if a.decided_by_id else None,
                actor_role=a.actor_role,
                auto=a.auto,
                file_sha256=a.file_sha256,
                file_version=a.file_version,
                stale=a.stale,
            )
            for a in rows
        ]
        # Approvers of stages not reached yet: planned, not asked.
        approvers += [
            schemas.ApproverOut(
                pid, titles.get(pid, ""), None, None, None, None, None, False, None, None, False
            )
            for sid, pid in planned
            if sid == st.id and pid not in asked
        ]
        out_stages.append(
            schemas.StageOut(st.index, st.state, st.deadline_days, st.deadline, approvers)
        )
    return schemas.RouteOut(
        id=route.id,
        document_id=route.document_id,
        state=route.state,
        current_stage=route.current_stage,
        journal_id=route.journal_id,
        stages=out_stages,
        signatories=[
            schemas.SignatoryOut(
                s.position_id,
                titles.get(s.position_id, ""),
                s.order,
                s.state,
                s.signed_at,
                s.file_sha256,
                s.actor_role,
            )
            for s in signatories
        ],
    )


# A document's current route: its latest (a returned route is superseded by a new one).
# The one place this rule is written; routes/services.py builds on it.
CURRENT_ROUTE_ID = (
    select(Route.id)
    # Not "document_id": the lock in routes/services.py is an UPDATE of `routes`, where
    # a column's name is reserved for its SET clause.
    .where(Route.document_id == bindparam("of_document", type_=Uuid()))
    .order_by(Route.created_at.desc(), Route.id.desc())
    .limit(1)
)


async def document_route(session: AsyncSession, document_id: uuid.UUID) -> schemas.RouteOut | None:
    found = await fetch_rows(session, CURRENT_ROUTE_ID, {"of_document": document_id})
    return await route_from_rows(session, found)


async def route_from_rows(
    session: AsyncSession, current: Sequence[Sequence[Any]]
) -> schemas.RouteOut | None:
    """The route whose id CURRENT_ROUTE_ID found, if any. Most cards (incoming letters)
    have none and cost nothing more; the ORM loads the route only for a document that
    has one."""
    if not current:
        return None
    route = await session.get_one(Route, current[0][0], populate_existing=True)
    return await route_out(session, route)
