"""The route as the card shows it (no import of documents.services: the card calls this)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from backend.db.fastread import AnySelect, fetch_together
from backend.db.models import (
    Approval,
    Position,
    Route,
    RouteApprover,
    RouteSignatory,
    RouteStage,
    User,
)
from backend.domain.routes import schemas

Rows = Sequence[Sequence[Any]]

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


def _route_parts(route_id: ColumnElement[uuid.UUID]) -> tuple[AnySelect, ...]:
    """The route `route_id` names, as five selects read together (fetch_together): the
    route, its stages, its approvals, the approvers planned for each stage, and its
    signatories, titles and names joined in. Written once, for a route by its id and
    for a document's current route."""
    route = select(
        Route.id, Route.document_id, Route.state, Route.current_stage, Route.journal_id
    ).where(Route.id == route_id)
    stages = (
        select(
            RouteStage.id,
            RouteStage.index,
            RouteStage.state,
            RouteStage.deadline_days,
            RouteStage.deadline,
        )
        .where(RouteStage.route_id == route_id)
        .order_by(RouteStage.index)
    )
    approvals = (
        select(
            Approval.stage_id,
            Approval.position_id,
            Position.title,
            Approval.decision,
            Approval.comment,
            Approval.decided_at,
            User.full_name,
            Approval.actor_role,
            Approval.auto,
            Approval.file_sha256,
            Approval.file_version,
            Approval.stale,
        )
        .join(Position, Position.id == Approval.position_id)
        .outerjoin(User, User.id == Approval.decided_by_id)
        .where(Approval.route_id == route_id)
        .order_by(Approval.asked_at, Approval.id)
    )
    # RouteApprover keeps no order of its own (a stage's approvers visa in parallel):
    # by title, so the card shows them the same way every time.
    planned = (
        select(RouteApprover.stage_id, RouteApprover.position_id, Position.title)
        .join(RouteStage, RouteStage.id == RouteApprover.stage_id)
        .join(Position, Position.id == RouteApprover.position_id)
        .where(RouteStage.route_id == route_id)
        .order_by(RouteStage.index, Position.title, RouteApprover.position_id)
    )
    signatories = (
        select(
            RouteSignatory.position_id,
            Position.title,
            RouteSignatory.order,
            RouteSignatory.state,
            RouteSignatory.signed_at,
            RouteSignatory.file_sha256,
            RouteSignatory.actor_role,
        )
        .join(Position, Position.id == RouteSignatory.position_id)
        .where(RouteSignatory.route_id == route_id)
        .order_by(RouteSignatory.order)
    )
    return (route, stages, approvals, planned, signatories)


ROUTE_BY_ID = _route_parts(bindparam("route_id", type_=Uuid()))
# The card's: the current route of `of_document`, if it has one (most do not).
CURRENT_ROUTE = _route_parts(CURRENT_ROUTE_ID.scalar_subquery())


async def route_out(session: AsyncSession, route_id: uuid.UUID) -> schemas.RouteOut:
    """The route as it stands in the session's transaction (route moves are written past
    the ORM, in routes/services.py: this reads the database, never ORM objects)."""
    out = route_from_rows(*await fetch_together(session, ROUTE_BY_ID, {"route_id": route_id}))
    if out is None:
        raise LookupError(f"route {route_id} not found")
    return out


def route_from_rows(
    route: Rows, stages: Rows, approvals: Rows, planned: Rows, signatories: Rows
) -> schemas.RouteOut | None:
    """The route from the rows of its five parts; None when there is no route."""
    if not route:
        return None
    route_id, document_id, state, current_stage, journal_id = route[0]
    out_stages = []
    for stage_id, index, stage_state, deadline_days, deadline in stages:
        approvers = [
            schemas.ApproverOut(position_id, *rest)
            for sid, position_id, *rest in approvals
            if sid == stage_id
        ]
        asked = {a.position_id for a in approvers}
        # Approvers of stages not reached yet: planned, not asked.
        approvers += [
            schemas.ApproverOut(pid, title, None, None, None, None, None, False, None, None, False)
            for sid, pid, title in planned
            if sid == stage_id and pid not in asked
        ]
        out_stages.append(schemas.StageOut(index, stage_state, deadline_days, deadline, approvers))
    return schemas.RouteOut(
        id=route_id,
        document_id=document_id,
        state=state,
        current_stage=current_stage,
        journal_id=journal_id,
        stages=out_stages,
        signatories=[schemas.SignatoryOut(*row) for row in signatories],
    )
