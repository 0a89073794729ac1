"""Resolutions of a document as a tree, for the card and the resolution endpoints."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.lookups import position_titles, user_names
from backend.db.models import Assignment, Resolution
from backend.domain.resolutions.schemas import AssignmentOut, ResolutionOut


def assignment_out(a: Assignment, titles: dict[uuid.UUID, str], today: dt.date) -> AssignmentOut:
    return AssignmentOut(
        id=a.id,
        resolution_id=a.resolution_id,
        document_id=a.document_id,
        executor_position_id=a.executor_position_id,
        executor=titles.get(a.executor_position_id, ""),
        responsible=a.responsible,
        state=a.state,
        deadline=a.deadline,
        overdue=a.deadline is not None and a.deadline < today and a.state == "open",
        on_control=a.on_control,
        controller_position_id=a.controller_position_id,
        report_text=a.report_text,
        reported_at=a.reported_at,
        accepted=a.accepted,
        review_comment=a.review_comment,
        removed_from_control_at=a.removed_from_control_at,
    )


async def resolution_tree(
    session: AsyncSession, document_id: uuid.UUID, today: dt.date, only: uuid.UUID | None = None
) -> list[ResolutionOut]:
    """All resolutions of the document as a forest (or the subtree of `only`)."""
    resolutions = list(
        await session.scalars(
            select(Resolution)
            .where(Resolution.document_id == document_id)
            .order_by(Resolution.created_at, Resolution.id)
        )
    )
    if not resolutions:
        return []
    assignments = list(
        await session.scalars(
            select(Assignment)
            .where(Assignment.document_id == document_id)
            .order_by(Assignment.responsible.desc(), Assignment.created_at, Assignment.id)
        )
    )
    pids = {r.author_position_id for r in resolutions} | {
        a.executor_position_id for a in assignments
    }
    titles = await position_titles(session, pids)
    uids = {u for r in resolutions for u in (r.prepared_by_id, r.decided_by_id) if u}
    names = await user_names(session, uids)
    nodes: dict[uuid.UUID, ResolutionOut] = {}
    for r in resolutions:
        nodes[r.id] = ResolutionOut(
            id=r.id,
            document_id=r.document_id,
            parent_id=r.parent_id,
            author_position_id=r.author_position_id,
            author=titles.get(r.author_position_id, ""),
            state=r.state,
            text=r.text,
            deadline=r.deadline,
            on_control=r.on_control,
            controller_position_id=r.controller_position_id,
            prepared_by=names.get(r.prepared_by_id) if r.prepared_by_id else None,
            decided_by=names.get(r.decided_by_id) if r.decided_by_id else None,
            actor_role=r.actor_role,
            comment=r.comment,
            created_at=r.created_at,
            issued_at=r.issued_at,
            planned_executors=list(r.planned_executors),
            assignments=[
                assignment_out(a, titles, today) for a in assignments if a.resolution_id == r.id
            ],
            children=[],
        )
    roots = []
    for r in resolutions:
        node = nodes[r.id]
        if r.parent_id is not None and r.parent_id in nodes:
            nodes[r.parent_id].children.append(node)
        else:
            roots.append(node)
    if only is not None:
        return [nodes[only]] if only in nodes else []
    return roots
