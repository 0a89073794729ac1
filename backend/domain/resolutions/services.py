"""Resolutions, assignments and control.

A resolution turns a document into assignments: one per executor, exactly one responsible.
Each assignment waits in its executor's `execute` folder and, on control, in the
controller's `control` folder. An assistant's draft waits in the executive's `drafts`
folder until the executive issues or rejects it. The caller commits; every state change is
a conditional UPDATE checked by its row count.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.ids import new_id
from backend.db.models import (
    ITEM_OPEN,
    Assignment,
    CabinetItem,
    Document,
    DocumentAddressee,
    Position,
    PositionHolder,
    Resolution,
    ResolutionTemplate,
)
from backend.domain.accounts.access import Principal
from backend.domain.audit.services import record
from backend.domain.cabinet.marks import touch
from backend.domain.documents.visibility import visible_document
from backend.domain.notifications.outbox import emit
from backend.domain.resolutions import schemas
from backend.domain.routes.items import close_items, open_item
from backend.errors import Conflict, Forbidden, Invalid, NotFound


async def _check_executors(
    session: AsyncSession, executors: list[schemas.ExecutorIn], doc: Document
) -> None:
    ids = [e.position_id for e in executors]
    if len(set(ids)) != len(ids):
        raise Invalid("an executor is listed twice", field="executors")
    if sum(1 for e in executors if e.responsible) != 1:
        raise Invalid("exactly one executor must be responsible", field="executors")
    found = {p.id: p for p in await session.scalars(select(Position).where(Position.id.in_(ids)))}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise Invalid(f"unknown executor positions: {', '.join(missing)}", field="executors")
    if doc.access_level == "dsp":
        uncleared = [p.title for p in found.values() if not p.dsp_cleared]
        if uncleared:
            raise Invalid(
                "executors not cleared for ДСП: " + "; ".join(uncleared), field="executors"
            )


def _check_deadline(deadline: dt.date | None, today: dt.date) -> None:
    if deadline is not None and deadline < today:
        raise Invalid("the deadline is in the past", field="deadline")


async def _check_controller(
    session: AsyncSession, controller_id: uuid.UUID | None, doc: Document
) -> None:
    if controller_id is None:
        return
    controller = await session.get(Position, controller_id)
    if controller is None:
        raise Invalid("unknown controller position", field="controller_id")
    if doc.access_level == "dsp" and not controller.dsp_cleared:
        raise Invalid("the controller is not cleared for ДСП", field="controller_id")


async def _may_resolve(
    session: AsyncSession, doc: Document, position_id: uuid.UUID, parent_id: uuid.UUID | None
) -> None:
    """The position resolves a document addressed to it, waiting in its folders, or one it
    was given an assignment on (a child resolution)."""
    if parent_id is not None:
        # Locked: a cancellation of the parent running at the same time either finishes
        # first (and we see it cancelled) or waits for this resolution to exist.
        parent = await session.get(
            Resolution, parent_id, with_for_update=True, populate_existing=True
        )
        if parent is None or parent.document_id != doc.id or parent.state != "issued":
            raise Invalid(
                "the parent is not an issued resolution of this document", field="parent_id"
            )
        mine = await session.scalar(
            select(Assignment.id).where(
                Assignment.resolution_id == parent_id,
                Assignment.executor_position_id == position_id,
                Assignment.state != "cancelled",
            )
        )
        if mine is None:
            raise Forbidden("the position has no assignment under the parent resolution")
        return
    linked = await session.scalar(
        select(CabinetItem.id)
        .where(
            CabinetItem.document_id == doc.id,
            CabinetItem.position_id == position_id,
            CabinetItem.folder.in_(("resolve", "drafts", "execute")),
        )
        .limit(1)
    )
    if linked is None:
        linked = await session.scalar(
            select(DocumentAddressee.position_id).where(
                DocumentAddressee.document_id == doc.id,
                DocumentAddressee.position_id == position_id,
            )
        )
    if linked is None:
        raise Forbidden("the document is not addressed to this position")


def _plan(executors: list[schemas.ExecutorIn]) -> list[dict[str, Any]]:
    return [{"position_id": str(e.position_id), "responsible": e.responsible} for e in executors]


async def _give_assignments(
    session: AsyncSession, res: Resolution, doc: Document, now: dt.datetime
) -> list[Assignment]:
    controller = res.controller_position_id or res.author_position_id
    made = []
    for e in res.planned_executors:
        a = Assignment(
            id=new_id(),
            resolution_id=res.id,
            document_id=doc.id,
            executor_position_id=uuid.UUID(e["position_id"]),
            responsible=bool(e["responsible"]),
            state="open",
            deadline=res.deadline,
            on_control=res.on_control,
            controller_position_id=controller if res.on_control else None,
            created_at=now,
        )
        session.add(a)
        made.append(a)
        open_item(
            session,
            position_id=a.executor_position_id,
            folder="execute",
            document_id=doc.id,
            ref_id=a.id,
            action="execute",
            at=now,
            deadline=res.deadline,
            urgent=doc.urgent,
        )
        if res.on_control:
            open_item(
                session,
                position_id=controller,
                folder="control",
                document_id=doc.id,
                ref_id=a.id,
                action="control",
                at=now,
                deadline=res.deadline,
                urgent=doc.urgent,
            )
    # Resolved: the document leaves the author's `resolve` folder.
    await close_items(
        session, now, document_id=doc.id, position_id=res.author_position_id, folder="resolve"
    )
    emit(
        session,
        "assignment.given",
        now,
        document_id=doc.id,
        positions=[a.executor_position_id for a in made],
        folder="execute",
        resolution_id=res.id,
    )
    return made


async def create_resolution(
    session: AsyncSession,
    principal: Principal,
    doc: Document,
    data: schemas.ResolutionIn,
    now: dt.datetime,
    today: dt.date,
) -> Resolution:
    cab = principal.cabinet(data.position_id, "prepare_resolutions" if data.draft else "decide")
    if doc.state != "registered":
        raise Conflict("only a registered document takes a resolution")
    await _check_executors(session, data.executors, doc)
    _check_deadline(data.deadline, today)
    await _check_controller(session, data.controller_id, doc)
    await _may_resolve(session, doc, data.position_id, data.parent_id)
    res = Resolution(
        id=new_id(),
        document_id=doc.id,
        parent_id=data.parent_id,
        author_position_id=data.position_id,
        prepared_by_id=principal.user.id if data.draft else None,
        created_by_id=principal.user.id,
        decided_by_id=None if data.draft else principal.user.id,
        actor_role=None if data.draft else cab.role,
        state="draft" if data.draft else "issued",
        text=data.text,
        deadline=data.deadline,
        on_control=data.on_control,
        controller_position_id=data.controller_id,
        planned_executors=_plan(data.executors),
        created_at=now,
        issued_at=None if data.draft else now,
    )
    session.add(res)
    await session.flush()
    if data.draft:
        open_item(
            session,
            position_id=data.position_id,
            folder="drafts",
            document_id=doc.id,
            ref_id=res.id,
            action="issue_resolution",
            at=now,
            deadline=doc.deadline,
            urgent=doc.urgent,
        )
        emit(
            session,
            "resolution.drafted",
            now,
            document_id=doc.id,
            positions=[data.position_id],
            folder="drafts",
        )
    else:
        await _give_assignments(session, res, doc, now)
    record(
        session,
        action="resolution.drafted" if data.draft else "resolution.issued",
        user_id=principal.user.id,
        position_id=cab.position_id,
        actor_role=cab.role,
        document_id=doc.id,
        object_type="resolution",
        object_id=res.id,
        details={
            "text": data.text,
            "deadline": data.deadline.isoformat() if data.deadline else None,
            "executors": res.planned_executors,
            "on_control": data.on_control,
            "parent_id": str(data.parent_id) if data.parent_id else None,
        },
        at=now,
    )
    await session.flush()
    return res


async def _resolution(
    session: AsyncSession, principal: Principal, resolution_id: uuid.UUID
) -> tuple[Resolution, Document]:
    res = await session.get(Resolution, resolution_id)
    if res is None:
        raise NotFound("resolution not found")
    doc = await visible_document(session, principal, res.document_id)
    return res, doc


async def _transition(
    session: AsyncSession, res: Resolution, from_state: str, **values: Any
) -> None:
    done = await session.execute(
        update(Resolution)
        .where(Resolution.id == res.id, Resolution.state == from_state)
        .values(**values)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        await session.refresh(res)
        raise Conflict(f"the resolution is already '{res.state}'")
    for k, v in values.items():
        setattr(res, k, v)


async def issue_resolution(
    session: AsyncSession,
    principal: Principal,
    resolution_id: uuid.UUID,
    edits: schemas.IssueIn,
    now: dt.datetime,
    today: dt.date,
) -> Resolution:
    res, doc = await _resolution(session, principal, resolution_id)
    cab = principal.cabinet(res.author_position_id, "decide")
    values, edited = await _edits(session, doc, edits, today)
    values.update(
        state="issued", issued_at=now, decided_by_id=principal.user.id, actor_role=cab.role
    )
    await _transition(session, res, "draft", **values)
    await close_items(session, now, ref_ids=[res.id], folder="drafts")
    await _give_assignments(session, res, doc, now)
    record(
        session,
        action="resolution.issued",
        user_id=principal.user.id,
        position_id=cab.position_id,
        actor_role=cab.role,
        document_id=doc.id,
        object_type="resolution",
        object_id=res.id,
        details={
            "from_draft": True,
            "prepared_by_id": str(res.prepared_by_id) if res.prepared_by_id else None,
            "edited": edited,
            "text": res.text,
        },
        at=now,
    )
    await session.flush()
    return res


async def _edits(
    session: AsyncSession, doc: Document, edits: schemas.IssueIn, today: dt.date
) -> tuple[dict[str, Any], list[str]]:
    """The column values of a draft's edits, checked, and the names of the edited fields."""
    values: dict[str, Any] = {}
    edited = []
    if edits.text is not None:
        values["text"] = edits.text
        edited.append("text")
    if edits.executors is not None:
        await _check_executors(session, edits.executors, doc)
        values["planned_executors"] = _plan(edits.executors)
        edited.append("executors")
    if edits.deadline is not None:
        _check_deadline(edits.deadline, today)
        values["deadline"] = edits.deadline
        edited.append("deadline")
    if edits.on_control is not None:
        values["on_control"] = edits.on_control
        edited.append("on_control")
    if edits.controller_id is not None:
        await _check_controller(session, edits.controller_id, doc)
        values["controller_position_id"] = edits.controller_id
        edited.append("controller_id")
    return values, edited


async def return_resolution(
    session: AsyncSession,
    principal: Principal,
    resolution_id: uuid.UUID,
    comment: str,
    now: dt.datetime,
) -> Resolution:
    """Вернуть помощнику: the executive sends an assistant's draft back for rework. It
    leaves the executive's `drafts` and waits in the `drafts` folder of the assistant's own
    position, with the comment, until the assistant resubmits it."""
    res, doc = await _resolution(session, principal, resolution_id)
    cab = principal.cabinet(res.author_position_id, "decide")
    if res.state == "draft" and res.prepared_by_id in (None, principal.user.id):
        raise Conflict("this draft was not prepared by an assistant; edit or reject it")
    await _transition(session, res, "draft", state="returned", comment=comment)
    await close_items(session, now, ref_ids=[res.id], folder="drafts")
    # The assistant's own cabinet: the position the assistant holds (the first, if several).
    back_to = await session.scalar(
        select(PositionHolder.position_id)
        .where(PositionHolder.user_id == res.prepared_by_id)
        .order_by(PositionHolder.position_id)
        .limit(1)
    )
    if back_to is not None:
        open_item(
            session,
            position_id=back_to,
            folder="drafts",
            document_id=doc.id,
            ref_id=res.id,
            action="rework_resolution",
            at=now,
            deadline=doc.deadline,
            urgent=doc.urgent,
        )
    record(
        session,
        action="resolution.returned",
        user_id=principal.user.id,
        position_id=cab.position_id,
        actor_role=cab.role,
        document_id=doc.id,
        object_type="resolution",
        object_id=res.id,
        details={
            "comment": comment,
            "to_user_id": str(res.prepared_by_id),
            "to_position_id": str(back_to) if back_to else None,
        },
        at=now,
    )
    emit(
        session,
        "resolution.returned",
        now,
        document_id=doc.id,
        positions=[back_to] if back_to else [],
        users=[res.prepared_by_id],
        folder="drafts",
        resolution_id=res.id,
    )
    await session.flush()
    return res


async def resubmit_resolution(
    session: AsyncSession,
    principal: Principal,
    resolution_id: uuid.UUID,
    edits: schemas.IssueIn,
    now: dt.datetime,
    today: dt.date,
) -> Resolution:
    """The assistant reworks a returned draft (with any edits) and puts it back in the
    executive's `drafts`."""
    res, doc = await _resolution(session, principal, resolution_id)
    cab = principal.cabinet(res.author_position_id, "prepare_resolutions")
    values, edited = await _edits(session, doc, edits, today)
    values.update(state="draft", prepared_by_id=principal.user.id)
    await _transition(session, res, "returned", **values)
    await close_items(session, now, ref_ids=[res.id], folder="drafts")
    open_item(
        session,
        position_id=res.author_position_id,
        folder="drafts",
        document_id=doc.id,
        ref_id=res.id,
        action="issue_resolution",
        at=now,
        deadline=doc.deadline,
        urgent=doc.urgent,
    )
    record(
        session,
        action="resolution.resubmitted",
        user_id=principal.user.id,
        position_id=cab.position_id,
        actor_role=cab.role,
        document_id=doc.id,
        object_type="resolution",
        object_id=res.id,
        details={"edited": edited, "text": res.text},
        at=now,
    )
    emit(
        session,
        "resolution.drafted",
        now,
        document_id=doc.id,
        positions=[res.author_position_id],
        folder="drafts",
        resolution_id=res.id,
        resubmitted=True,
    )
    await session.flush()
    return res


async def reject_resolution(
    session: AsyncSession,
    principal: Principal,
    resolution_id: uuid.UUID,
    comment: str | None,
    now: dt.datetime,
) -> Resolution:
    res, doc = await _resolution(session, principal, resolution_id)
    cab = principal.cabinet(res.author_position_id, "decide")
    await _transition(
        session,
        res,
        "draft",
        state="rejected",
        comment=comment,
        closed_at=now,
        decided_by_id=principal.user.id,
        actor_role=cab.role,
    )
    await close_items(session, now, ref_ids=[res.id], folder="drafts")
    record(
        session,
        action="resolution.rejected",
        user_id=principal.user.id,
        position_id=cab.position_id,
        actor_role=cab.role,
        document_id=doc.id,
        object_type="resolution",
        object_id=res.id,
        details={"comment": comment},
        at=now,
    )
    emit(session, "resolution.rejected", now, document_id=doc.id, resolution_id=res.id)
    await session.flush()
    return res


async def cancel_resolution(
    session: AsyncSession,
    principal: Principal,
    resolution_id: uuid.UUID,
    comment: str | None,
    now: dt.datetime,
) -> Resolution:
    res, doc = await _resolution(session, principal, resolution_id)
    cab = principal.cabinet(res.author_position_id, "decide")
    await _transition(session, res, "issued", state="cancelled", comment=comment, closed_at=now)
    cancelled = await _cancel_assignments(session, res.id, now)
    record(
        session,
        action="resolution.cancelled",
        user_id=principal.user.id,
        position_id=cab.position_id,
        actor_role=cab.role,
        document_id=doc.id,
        object_type="resolution",
        object_id=res.id,
        details={"comment": comment, "assignments": len(cancelled)},
        at=now,
    )
    emit(
        session,
        "resolution.cancelled",
        now,
        document_id=doc.id,
        positions=[p for _, p in cancelled],
        resolution_id=res.id,
    )
    await _cancel_descendants(session, principal, res, comment, now)
    await session.flush()
    return res


async def _cancel_assignments(
    session: AsyncSession, resolution_id: uuid.UUID, now: dt.datetime
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Cancel a resolution's assignments and close their `execute` and `control` items."""
    cancelled = [
        (a, p)
        for a, p in (
            await session.execute(
                update(Assignment)
                .where(
                    Assignment.resolution_id == resolution_id,
                    Assignment.state.in_(("open", "reported", "executed")),
                )
                .values(state="cancelled")
                .returning(Assignment.id, Assignment.executor_position_id)
            )
        ).all()
    ]
    await close_items(session, now, ref_ids=[a for a, _ in cancelled])
    return cancelled


async def _cancel_descendants(
    session: AsyncSession,
    principal: Principal,
    root: Resolution,
    comment: str | None,
    now: dt.datetime,
) -> None:
    """Cancelling a resolution cancels the resolutions written under it, at any depth
    (issued ones with their assignments, drafts still waiting), each with its audit record
    naming the cancelled root."""
    cab = principal.cabinet(root.author_position_id, "decide")
    descendants: list[uuid.UUID] = []
    frontier = [root.id]
    while frontier:
        frontier = list(
            await session.scalars(select(Resolution.id).where(Resolution.parent_id.in_(frontier)))
        )
        descendants.extend(frontier)
    if not descendants:
        return
    children = (
        await session.execute(
            update(Resolution)
            .where(
                Resolution.id.in_(descendants),
                Resolution.state.in_(("draft", "returned", "issued")),
            )
            .values(state="cancelled", comment=comment, closed_at=now)
            .returning(Resolution.id, Resolution.author_position_id)
        )
    ).all()
    for child_id, author_position_id in children:
        cancelled = await _cancel_assignments(session, child_id, now)
        # A child still in draft waits in a `drafts` folder: it leaves too.
        await close_items(session, now, ref_ids=[child_id])
        record(
            session,
            action="resolution.cancelled",
            user_id=principal.user.id,
            position_id=cab.position_id,
            actor_role=cab.role,
            document_id=root.document_id,
            object_type="resolution",
            object_id=child_id,
            details={
                "comment": comment,
                "assignments": len(cancelled),
                "cascade_from": str(root.id),
            },
            at=now,
        )
        emit(
            session,
            "resolution.cancelled",
            now,
            document_id=root.document_id,
            positions=[author_position_id, *(p for _, p in cancelled)],
            resolution_id=child_id,
            cascade_from=root.id,
        )


# --- assignments ---------------------------------------------------------------------------


async def _assignment(
    session: AsyncSession, principal: Principal, assignment_id: uuid.UUID
) -> tuple[Assignment, Document]:
    a = await session.get(Assignment, assignment_id)
    if a is None:
        raise NotFound("assignment not found")
    doc = await visible_document(session, principal, a.document_id)
    return a, doc


async def _move(session: AsyncSession, a: Assignment, where: list[Any], **values: Any) -> None:
    done = await session.execute(
        update(Assignment).where(Assignment.id == a.id, *where).values(**values)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        await session.refresh(a)
        raise Conflict(
            f"the assignment is '{a.state}'" + ("" if a.on_control else ", not on control")
        )
    for k, v in values.items():
        setattr(a, k, v)


async def _set_control_action(session: AsyncSession, a: Assignment, action: str) -> None:
    flagged = await session.execute(
        update(CabinetItem)
        .where(
            CabinetItem.ref_id == a.id,
            CabinetItem.folder == "control",
            CabinetItem.state == ITEM_OPEN,
        )
        .values(expected_action=action, unread=True)
        .returning(CabinetItem.position_id)
    )
    touch(session, (p for (p,) in flagged))


async def report(
    session: AsyncSession,
    principal: Principal,
    assignment_id: uuid.UUID,
    text: str,
    now: dt.datetime,
) -> Assignment:
    a, doc = await _assignment(session, principal, assignment_id)
    cab = principal.cabinet(a.executor_position_id, "decide")
    # Without control nobody reviews the report: it closes the assignment.
    await _move(
        session,
        a,
        [Assignment.state == "open"],
        state="reported" if a.on_control else "executed",
        report_text=text,
        reported_at=now,
        reported_by_id=principal.user.id,
    )
    await close_items(session, now, ref_ids=[a.id], folder="execute")
    if a.on_control:
        await _set_control_action(session, a, "accept_report")
    record(
        session,
        action="assignment.reported",
        user_id=principal.user.id,
        position_id=cab.position_id,
        actor_role=cab.role,
        document_id=doc.id,
        object_type="assignment",
        object_id=a.id,
        details={"text": text},
        at=now,
    )
    emit(
        session,
        "assignment.reported",
        now,
        document_id=doc.id,
        positions=[a.controller_position_id] if a.controller_position_id else [],
        folder="control",
        assignment_id=a.id,
    )
    await session.flush()
    return a


async def review_report(
    session: AsyncSession,
    principal: Principal,
    assignment_id: uuid.UUID,
    accepted: bool,
    comment: str | None,
    now: dt.datetime,
) -> Assignment:
    a, doc = await _assignment(session, principal, assignment_id)
    if a.controller_position_id is None:
        raise Conflict("the assignment is not on control")
    cab = principal.cabinet(a.controller_position_id, "decide")
    await _move(
        session,
        a,
        [Assignment.state == "reported"],
        state="executed" if accepted else "open",
        accepted=accepted,
        review_comment=comment,
        accepted_at=now if accepted else None,
    )
    if accepted:
        await _set_control_action(session, a, "remove_from_control")
    else:
        await _set_control_action(session, a, "control")
        open_item(
            session,
            position_id=a.executor_position_id,
            folder="execute",
            document_id=doc.id,
            ref_id=a.id,
            action="execute",
            at=now,
            deadline=a.deadline,
            urgent=doc.urgent,
        )
    record(
        session,
        action="assignment.report_accepted" if accepted else "assignment.report_returned",
        user_id=principal.user.id,
        position_id=cab.position_id,
        actor_role=cab.role,
        document_id=doc.id,
        object_type="assignment",
        object_id=a.id,
        details={"comment": comment},
        at=now,
    )
    emit(
        session,
        "assignment.reviewed",
        now,
        document_id=doc.id,
        positions=[a.executor_position_id],
        accepted=accepted,
        assignment_id=a.id,
    )
    await session.flush()
    return a


async def remove_from_control(
    session: AsyncSession,
    principal: Principal,
    assignment_id: uuid.UUID,
    comment: str | None,
    now: dt.datetime,
) -> Assignment:
    a, doc = await _assignment(session, principal, assignment_id)
    if a.controller_position_id is None:
        raise Conflict("the assignment is not on control")
    cab = principal.cabinet(a.controller_position_id, "decide")
    await _move(
        session,
        a,
        [Assignment.on_control.is_(True), Assignment.state != "cancelled"],
        on_control=False,
        removed_from_control_at=now,
    )
    await close_items(session, now, ref_ids=[a.id], folder="control")
    record(
        session,
        action="assignment.removed_from_control",
        user_id=principal.user.id,
        position_id=cab.position_id,
        actor_role=cab.role,
        document_id=doc.id,
        object_type="assignment",
        object_id=a.id,
        details={"comment": comment, "state": a.state},
        at=now,
    )
    emit(
        session,
        "assignment.removed_from_control",
        now,
        document_id=doc.id,
        positions=[a.executor_position_id],
        assignment_id=a.id,
    )
    await session.flush()
    return a


# --- templates -------------------------------------------------------------------------------


async def templates(
    session: AsyncSession, principal: Principal, position_id: uuid.UUID
) -> list[ResolutionTemplate]:
    principal.cabinet(position_id, "read")
    return list(
        await session.scalars(
            select(ResolutionTemplate)
            .where(ResolutionTemplate.position_id == position_id)
            .order_by(ResolutionTemplate.created_at, ResolutionTemplate.id)
        )
    )


async def add_template(
    session: AsyncSession, principal: Principal, data: schemas.TemplateIn, now: dt.datetime
) -> ResolutionTemplate:
    principal.cabinet(data.position_id, "prepare_resolutions")
    t = ResolutionTemplate(
        id=new_id(), position_id=data.position_id, text=data.text, created_at=now
    )
    session.add(t)
    await session.flush()
    return t


async def delete_template(
    session: AsyncSession, principal: Principal, template_id: uuid.UUID
) -> None:
    t = await session.get(ResolutionTemplate, template_id)
    if t is None or not any(c.position_id == t.position_id for c in principal.cabinets):
        raise NotFound("template not found")
    principal.cabinet(t.position_id, "prepare_resolutions")
    await session.delete(t)
