"""Resolutions of a document as a tree, for the card and the resolution endpoints."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.types import Uuid

from backend.db.fastread import fetch_rows
from backend.db.models import Assignment, Position, Resolution, User
from backend.domain.resolutions.schemas import AssignmentOut, ResolutionOut


class _AssignmentRow(NamedTuple):
    """An assignment as the card's statement reads it (the columns `assignment_out` uses)."""

    id: uuid.UUID
    resolution_id: uuid.UUID
    document_id: uuid.UUID
    executor_position_id: uuid.UUID
    responsible: bool
    state: str
    deadline: dt.date | None
    on_control: bool
    controller_position_id: uuid.UUID | None
    report_text: str | None
    reported_at: dt.datetime | None
    accepted: bool | None
    review_comment: str | None
    removed_from_control_at: dt.datetime | None


def assignment_out(
    a: Assignment | _AssignmentRow, titles: dict[uuid.UUID, str], today: dt.date
) -> AssignmentOut:
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


# Built once and run through fastread, names and titles joined in: a cold card of a letter
# with resolutions used to load both lists as ORM objects and look the names up after.
_DOCUMENT = bindparam("document_id", type_=Uuid())
_Prepared = aliased(User)
_Decided = aliased(User)
RESOLUTIONS = (
    select(
        Resolution.id,
        Resolution.document_id,
        Resolution.parent_id,
        Resolution.author_position_id,
        Position.title,
        Resolution.state,
        Resolution.text,
        Resolution.deadline,
        Resolution.on_control,
        Resolution.controller_position_id,
        _Prepared.full_name,
        _Decided.full_name,
        Resolution.actor_role,
        Resolution.comment,
        Resolution.created_at,
        Resolution.issued_at,
        Resolution.planned_executors,
    )
    .join(Position, Position.id == Resolution.author_position_id)
    .outerjoin(_Prepared, _Prepared.id == Resolution.prepared_by_id)
    .outerjoin(_Decided, _Decided.id == Resolution.decided_by_id)
    .where(Resolution.document_id == _DOCUMENT)
    .order_by(Resolution.created_at, Resolution.id)
)
ASSIGNMENTS = (
    select(
        *(getattr(Assignment, name) for name in _AssignmentRow._fields),
        Position.title,
    )
    .join(Position, Position.id == Assignment.executor_position_id)
    .where(Assignment.document_id == _DOCUMENT)
    .order_by(Assignment.responsible.desc(), Assignment.created_at, Assignment.id)
)


async def resolution_tree(
    session: AsyncSession, document_id: uuid.UUID, today: dt.date, only: uuid.UUID | None = None
) -> list[ResolutionOut]:
    """All resolutions of the document as a forest (or the subtree of `only`)."""
    params = {"document_id": document_id}
    resolutions = await fetch_rows(session, RESOLUTIONS, params)
    if not resolutions:
        return []
    return tree_from_rows(resolutions, await fetch_rows(session, ASSIGNMENTS, params), today, only)


def tree_from_rows(
    resolutions: Sequence[Sequence[Any]],
    assignments: Sequence[Sequence[Any]],
    today: dt.date,
    only: uuid.UUID | None = None,
) -> list[ResolutionOut]:
    """The forest from the rows of RESOLUTIONS and ASSIGNMENTS (the card reads both with
    its other parts in one round trip)."""
    by_resolution: dict[uuid.UUID, list[AssignmentOut]] = {}
    for row in assignments:
        a = _AssignmentRow(*row[:-1])
        out = assignment_out(a, {a.executor_position_id: row[-1]}, today)
        by_resolution.setdefault(a.resolution_id, []).append(out)
    nodes: dict[uuid.UUID, ResolutionOut] = {}
    for (
        rid,
        doc_id,
        parent_id,
        author_id,
        author,
        state,
        text,
        deadline,
        on_control,
        controller_id,
        prepared_by,
        decided_by,
        actor_role,
        comment,
        created_at,
        issued_at,
        planned,
    ) in resolutions:
        nodes[rid] = ResolutionOut(
            id=rid,
            document_id=doc_id,
            parent_id=parent_id,
            author_position_id=author_id,
            author=author,
            state=state,
            text=text,
            deadline=deadline,
            on_control=on_control,
            controller_position_id=controller_id,
            prepared_by=prepared_by,
            decided_by=decided_by,
            actor_role=actor_role,
            comment=comment,
            created_at=created_at,
            issued_at=issued_at,
            planned_executors=list(planned or []),
            assignments=by_resolution.get(rid, []),
            children=[],
        )
    roots = []
    for node in nodes.values():  # in the statement's order
        if node.parent_id is not None and node.parent_id in nodes:
            nodes[node.parent_id].children.append(node)
        else:
            roots.append(node)
    if only is not None:
        return [nodes[only]] if only in nodes else []
    return roots
