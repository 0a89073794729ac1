"""Routes on drafts: stages of parallel visas, signatories, registration and delivery.

Every decision is written by the caller's transaction (the HTTP layer or a job commits):
state change, cabinet items, audit record and outbox event together or not at all. A
decision first bumps the route's `version` with a conditional UPDATE: that row lock
serialises decisions on one route on PostgreSQL (and SQLite has one writer anyway), so
"is the stage complete?" is answered once. Steps are taken with `UPDATE … WHERE decision IS
NULL` and the row count, never read-then-write.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import NamedTuple

from sqlalchemy import Date, Integer, and_, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.types import Uuid

from backend.clock import region_today
from backend.db.fastread import fetch_rows, insert_row, run_writes
from backend.db.ids import new_id
from backend.db.models import (
    ITEM_OPEN,
    Approval,
    CabinetItem,
    Document,
    DocumentAddressee,
    DocumentFile,
    Journal,
    Organization,
    Position,
    Route,
    RouteApprover,
    RouteSignatory,
    RouteStage,
    UtcDateTime,
)
from backend.domain.accounts.access import Principal
from backend.domain.audit import services as audit
from backend.domain.audit.services import record, record_now
from backend.domain.calendar.services import add_working_days, end_of_day
from backend.domain.documents.services import StoredFile, next_registration_number
from backend.domain.notifications import outbox
from backend.domain.notifications.outbox import emit, emit_now
from backend.domain.routes import schemas
from backend.domain.routes.card import CURRENT_ROUTE_ID
from backend.domain.routes.items import close_items, close_items_of, open_item, open_item_now
from backend.errors import Conflict, Forbidden, Invalid, NotFound

EDITABLE_DOC_STATES = ("draft", "on_route")


async def current_route(session: AsyncSession, document_id: uuid.UUID) -> Route | None:
    return await session.scalar(
        select(Route).where(Route.id == CURRENT_ROUTE_ID.scalar_subquery()),
        {"of_document": document_id},
    )


async def _current_stage(session: AsyncSession, route: Route) -> RouteStage:
    """The stage the active route is at (the caller has checked it has one)."""
    stage = await session.scalar(
        select(RouteStage).where(
            RouteStage.route_id == route.id, RouteStage.index == route.current_stage
        )
    )
    assert stage is not None
    return stage


async def main_file(session: AsyncSession, document_id: uuid.UUID) -> DocumentFile:
    f = await session.scalar(
        select(DocumentFile)
        .where(
            DocumentFile.document_id == document_id,
            DocumentFile.is_current.is_(True),
            DocumentFile.role == "main",
        )
        .limit(1)
    )
    if f is None:
        raise Conflict("the draft has no main file")
    return f


async def _lock_route(
    session: AsyncSession, route_id: uuid.UUID, states: tuple[str, ...]
) -> Route | None:
    """Bump the route's version if it is in one of `states`: the per-route lock."""
    row = (
        await session.execute(
            update(Route)
            .where(Route.id == route_id, Route.state.in_(states))
            .values(version=Route.version + 1)
            .returning(Route.state, Route.current_stage, Route.version)
        )
    ).one_or_none()
    if row is None:
        return None
    route = await session.get(Route, route_id)
    assert route is not None
    route.state, route.current_stage, route.version = row
    return route


async def _positions_exist(session: AsyncSession, ids: set[uuid.UUID], field: str) -> None:
    found = set(await session.scalars(select(Position.id).where(Position.id.in_(ids))))
    missing = sorted(str(i) for i in ids - found)
    if missing:
        raise Invalid(f"unknown positions: {', '.join(missing)}", field=field)


async def _org_and_ancestors(session: AsyncSession, org_id: uuid.UUID) -> set[uuid.UUID]:
    """A department registers in its own journals or those of the organisations above it."""
    chain: set[uuid.UUID] = set()
    current: uuid.UUID | None = org_id
    while current is not None and current not in chain:
        chain.add(current)
        current = await session.scalar(
            select(Organization.parent_id).where(Organization.id == current)
        )
    return chain


# --- setting and starting a route ------------------------------------------------------------


async def set_route(
    session: AsyncSession,
    principal: Principal,
    doc: Document,
    data: schemas.RouteIn,
    now: dt.datetime,
) -> Route:
    cab = principal.cabinet(doc.author_position_id, "decide")
    if doc.state not in EDITABLE_DOC_STATES:
        raise Conflict(f"a document in state '{doc.state}' takes no route")
    for i, stage in enumerate(data.stages):
        if len(set(stage.approvers)) != len(stage.approvers):
            raise Invalid(f"stage {i}: an approver is listed twice", field="stages")
    if len(set(data.signatories)) != len(data.signatories):
        raise Invalid("a signatory is listed twice", field="signatories")
    everyone = {p for s in data.stages for p in s.approvers} | set(data.signatories)
    await _positions_exist(session, everyone, "stages")
    if doc.access_level == "dsp":
        uncleared = list(
            await session.scalars(
                select(Position.title).where(
                    Position.id.in_(everyone), Position.dsp_cleared.is_(False)
                )
            )
        )
        if uncleared:
            # They could not open the draft, yet an auto-visa would approve in their name.
            raise Invalid("not cleared for ДСП: " + "; ".join(uncleared), field="stages")
    journal = await session.get(Journal, data.journal_id)
    if journal is None or journal.organization_id not in await _org_and_ancestors(
        session, doc.organization_id
    ):
        raise Invalid("unknown journal for this organisation", field="journal_id")

    existing = await current_route(session, doc.id)
    if existing is not None:
        old = await _lock_route(session, existing.id, ("draft", "returned"))
        if old is None:
            raise Conflict(f"the route is '{existing.state}'; it cannot be replaced now")
        await session.execute(
            update(Route).where(Route.id == existing.id).values(state="superseded")
        )
    route = Route(
        id=new_id(),
        document_id=doc.id,
        state="draft",
        version=1,
        journal_id=data.journal_id,
        created_at=now,
        created_by_id=principal.user.id,
    )
    session.add(route)
    await session.flush()
    for index, stage in enumerate(data.stages):
        sid = new_id()
        session.add(
            RouteStage(id=sid, route_id=route.id, index=index, deadline_days=stage.deadline_days)
        )
        await session.flush()
        for pid in stage.approvers:
            session.add(RouteApprover(stage_id=sid, position_id=pid))
    for order, pid in enumerate(data.signatories):
        session.add(RouteSignatory(id=new_id(), route_id=route.id, order=order, position_id=pid))
    record(
        session,
        action="route.set",
        user_id=principal.user.id,
        position_id=cab.position_id,
        actor_role=cab.role,
        document_id=doc.id,
        object_type="route",
        object_id=route.id,
        details={
            "stages": [[str(p) for p in s.approvers] for s in data.stages],
            "signatories": [str(p) for p in data.signatories],
        },
        at=now,
    )
    await session.flush()
    return route


async def start_route(
    session: AsyncSession, principal: Principal, doc: Document, now: dt.datetime, tz: str
) -> Route:
    cab = principal.cabinet(doc.author_position_id, "decide")
    found = await current_route(session, doc.id)
    if found is None:
        raise Conflict("set a route first")
    route = await _lock_route(session, found.id, ("draft", "returned"))
    if route is None:
        raise Conflict(f"the route is '{found.state}'; it cannot be started")
    restart = route.state == "returned"
    # A restart asks everyone again: answers given so far stay in history as stale.
    await session.execute(
        update(Approval)
        .where(Approval.route_id == route.id, Approval.stale.is_(False))
        .values(stale=True)
    )
    await session.execute(
        update(RouteStage)
        .where(RouteStage.route_id == route.id)
        .values(state="pending", deadline=None, due_at=None, started_at=None, finished_at=None)
    )
    await session.execute(
        update(RouteSignatory)
        .where(RouteSignatory.route_id == route.id)
        .values(state="pending", signed_at=None, signed_by_id=None, file_sha256=None)
    )
    await close_items(session, now, ref_ids=[route.id], folder="info")
    route.state = "active"
    route.started_at = now
    route.current_stage = None
    await session.execute(update(Document).where(Document.id == doc.id).values(state="on_route"))
    f = await main_file(session, doc.id)
    record(
        session,
        action="route.restarted" if restart else "route.started",
        user_id=principal.user.id,
        position_id=cab.position_id,
        actor_role=cab.role,
        document_id=doc.id,
        object_type="route",
        object_id=route.id,
        details={"file_sha256": f.sha256, "version": f.version},
        at=now,
    )
    await _advance(session, route.id, _facts(doc), -1, now, tz)
    await session.refresh(route)  # moved on by _advance, which the ORM does not see
    return route


# --- moving along ----------------------------------------------------------------------------


class DocFacts(NamedTuple):
    """What moving a route needs to know of its document."""

    id: uuid.UUID
    author_position_id: uuid.UUID
    urgent: bool
    deadline: dt.date | None


def _facts(doc: Document) -> DocFacts:
    return DocFacts(doc.id, doc.author_position_id, doc.urgent, doc.deadline)


# Moving a route on (the next stage asked, or the signing) runs on prebuilt statements
# through fastread, as the visa does: a third of all visas complete their stage. The ORM
# never sees these writes, so a caller that holds the route's objects reloads them
# (`populate_existing`) before it reads them again.
_NEXT_STAGE = select(RouteStage.id, RouteStage.index, RouteStage.deadline_days).where(
    RouteStage.route_id == bindparam("route_id", type_=Uuid()),
    RouteStage.index == bindparam("index", type_=Integer()),
)
_ACTIVATE_STAGE = (
    update(RouteStage)
    .where(RouteStage.id == bindparam("stage_id", type_=Uuid()))
    .values(
        state="active",
        started_at=bindparam("at", type_=UtcDateTime()),
        deadline=bindparam("deadline", type_=Date()),
        due_at=bindparam("due_at", type_=UtcDateTime()),
        finished_at=None,
        reminded_at=None,  # a restarted route reminds again before the new deadline
    )
    .returning(RouteStage.id)
    .execution_options(synchronize_session=False)
)
_MOVE_ROUTE = (
    update(Route)
    .where(Route.id == bindparam("route_id", type_=Uuid()))
    .values(state=bindparam("state"), current_stage=bindparam("stage", type_=Integer()))
    .returning(Route.id)
    .execution_options(synchronize_session=False)
)
_APPROVERS = (
    select(RouteApprover.position_id)
    .where(RouteApprover.stage_id == bindparam("stage_id", type_=Uuid()))
    .order_by(RouteApprover.position_id)
)
_FIRST_SIGNATORY = (
    select(RouteSignatory.id, RouteSignatory.position_id)
    .where(RouteSignatory.route_id == bindparam("route_id", type_=Uuid()))
    .order_by(RouteSignatory.order)
    .limit(1)
)
_AWAIT_SIGNATURE = (
    update(RouteSignatory)
    .where(RouteSignatory.id == bindparam("step_id", type_=Uuid()))
    .values(state="waiting")
    .returning(RouteSignatory.id)
    .execution_options(synchronize_session=False)
)
_FINISH_STAGE = (
    update(RouteStage)
    .where(RouteStage.id == bindparam("stage_id", type_=Uuid()), RouteStage.state == "active")
    .values(state="done", finished_at=bindparam("at", type_=UtcDateTime()))
    .returning(RouteStage.index)
    .execution_options(synchronize_session=False)
)


async def _activate_stage(
    session: AsyncSession,
    route_id: uuid.UUID,
    doc: DocFacts,
    stage_id: uuid.UUID,
    stage_index: int,
    deadline_days: int,
    now: dt.datetime,
    tz: str,
) -> None:
    deadline = await add_working_days(session, region_today(tz, now), deadline_days)
    await fetch_rows(
        session,
        _ACTIVATE_STAGE,
        {"stage_id": stage_id, "at": now, "deadline": deadline, "due_at": end_of_day(deadline, tz)},
    )
    await fetch_rows(
        session, _MOVE_ROUTE, {"route_id": route_id, "state": "active", "stage": stage_index}
    )
    approvers = [pid for (pid,) in await fetch_rows(session, _APPROVERS, {"stage_id": stage_id})]
    for pid in approvers:
        await _ask(session, route_id, doc, stage_id, deadline, pid, now)
    await emit_now(
        session,
        "visa.requested",
        now,
        document_id=doc.id,
        positions=approvers,
        folder="visa",
        deadline=deadline,
    )


async def _ask(
    session: AsyncSession,
    route_id: uuid.UUID,
    doc: DocFacts,
    stage_id: uuid.UUID,
    deadline: dt.date | None,
    position_id: uuid.UUID,
    now: dt.datetime,
) -> None:
    approval_id = new_id()
    await insert_row(
        session,
        Approval,
        {
            "id": approval_id,
            "route_id": route_id,
            "stage_id": stage_id,
            "document_id": doc.id,
            "position_id": position_id,
            "asked_at": now,
            "stale": False,
            "auto": False,
        },
    )
    await open_item_now(
        session,
        position_id=position_id,
        folder="visa",
        document_id=doc.id,
        ref_id=approval_id,
        action="visa",
        at=now,
        deadline=deadline,
        urgent=doc.urgent,
    )


async def _advance(
    session: AsyncSession,
    route_id: uuid.UUID,
    doc: DocFacts,
    done_index: int,
    now: dt.datetime,
    tz: str,
) -> str:
    """After stage `done_index` (-1: the start), activate the next stage or the signing.
    Returns the route's new state."""
    nxt = await fetch_rows(session, _NEXT_STAGE, {"route_id": route_id, "index": done_index + 1})
    if nxt:
        stage_id, stage_index, deadline_days = nxt[0]
        await _activate_stage(session, route_id, doc, stage_id, stage_index, deadline_days, now, tz)
        return "active"
    await fetch_rows(
        session, _MOVE_ROUTE, {"route_id": route_id, "state": "signing", "stage": None}
    )
    first = await fetch_rows(session, _FIRST_SIGNATORY, {"route_id": route_id})
    assert first, "set_route requires a signatory"
    step_id, position_id = first[0]
    await _ask_signature(session, doc, step_id, position_id, now)
    return "signing"


async def _ask_signature(
    session: AsyncSession,
    doc: DocFacts,
    step_id: uuid.UUID,
    position_id: uuid.UUID,
    now: dt.datetime,
) -> None:
    await fetch_rows(session, _AWAIT_SIGNATURE, {"step_id": step_id})
    await open_item_now(
        session,
        position_id=position_id,
        folder="sign",
        document_id=doc.id,
        ref_id=step_id,
        action="sign",
        at=now,
        deadline=doc.deadline,
        urgent=doc.urgent,
    )
    await emit_now(
        session,
        "sign.requested",
        now,
        document_id=doc.id,
        positions=[position_id],
        folder="sign",
    )


async def _complete_stage(
    session: AsyncSession,
    route_id: uuid.UUID,
    doc: DocFacts,
    stage_id: uuid.UUID,
    now: dt.datetime,
    tz: str,
) -> str | None:
    """Close the stage (once: the UPDATE's row count) and ask the next one or the signing.
    Returns the route's new state, or None if the stage was no longer active."""
    done = await fetch_rows(session, _FINISH_STAGE, {"stage_id": stage_id, "at": now})
    if not done:
        return None
    stage_index = done[0][0]
    await record_now(
        session,
        action="route.stage_completed",
        user_id=None,
        document_id=doc.id,
        object_type="route_stage",
        object_id=stage_id,
        details={"stage": stage_index},
        at=now,
    )
    return await _advance(session, route_id, doc, stage_index, now, tz)


async def _return_to_author(
    session: AsyncSession,
    route: Route,
    doc: Document,
    stage_id: uuid.UUID,
    now: dt.datetime,
    remarks: str | None,
) -> None:
    route.state = "returned"
    route.current_stage = None
    await session.execute(
        update(RouteStage)
        .where(RouteStage.id == stage_id)
        .values(state="rejected", finished_at=now)
    )
    waiting = list(
        await session.scalars(
            select(Approval.id).where(
                Approval.stage_id == stage_id,
                Approval.stale.is_(False),
                Approval.decision.is_(None),
            )
        )
    )
    await close_items(session, now, ref_ids=waiting)
    await session.execute(update(Document).where(Document.id == doc.id).values(state="draft"))
    doc.state = "draft"
    open_item(
        session,
        position_id=doc.author_position_id,
        folder="info",
        document_id=doc.id,
        ref_id=route.id,
        action="rework",
        at=now,
        urgent=doc.urgent,
    )
    emit(
        session,
        "route.returned",
        now,
        document_id=doc.id,
        positions=[doc.author_position_id],
        folder="info",
        remarks=bool(remarks),
    )


# --- visas -----------------------------------------------------------------------------------


# The visa's own statements, built once and run through fastread: a visa is the most
# frequent decision, and building and running these through the ORM was most of its cost.
_LOCK_CURRENT_ROUTE = (
    update(Route)
    .where(
        # Not correlated: the subquery reads `routes` on its own, as in current_route.
        Route.id == CURRENT_ROUTE_ID.correlate(None).scalar_subquery(),
        Route.state == bindparam("in_state"),
    )
    .values(version=Route.version + 1)
    .returning(Route.id, Route.current_stage)
    .execution_options(synchronize_session=False)
)
_STAGE_AND_FILE = (
    select(
        RouteStage.id,
        RouteStage.index,
        DocumentFile.sha256,
        DocumentFile.version,
        Document.author_position_id,
        Document.urgent,
        Document.deadline,
    )
    .select_from(RouteStage)
    .join(Document, Document.id == bindparam("document_id", type_=Uuid()))
    .outerjoin(
        DocumentFile,
        and_(
            DocumentFile.document_id == bindparam("document_id", type_=Uuid()),
            DocumentFile.is_current.is_(True),
            DocumentFile.role == "main",
        ),
    )
    .where(
        RouteStage.route_id == bindparam("route_id", type_=Uuid()),
        RouteStage.index == bindparam("index", type_=Integer()),
    )
    .limit(1)
)
_OTHER = aliased(Approval)
# The stage's other live approvals still waiting (one live approval per position and
# stage: uq_approvals_live), counted by the answer's own statement in its RETURNING. The
# snapshot is the statement's, and under the route lock no other answer to the stage can
# be in flight, so this is the count after the answer: one round trip less per visa than
# counting afterwards. Bound, not correlated: SQLite renders RETURNING's columns without
# their table, which would leave a correlated subquery comparing its own columns.
_OTHERS_WAITING = (
    select(func.count())
    .select_from(_OTHER)
    .where(
        _OTHER.stage_id == bindparam("stage", type_=Uuid()),
        _OTHER.position_id != bindparam("position", type_=Uuid()),
        _OTHER.stale.is_(False),
        _OTHER.decision.is_(None),
    )
    .scalar_subquery()
)
_ANSWER = (
    update(Approval)
    .where(
        Approval.stage_id == bindparam("stage", type_=Uuid()),
        Approval.position_id == bindparam("position", type_=Uuid()),
        Approval.decision.is_(None),
        Approval.stale.is_(False),
    )
    .values(
        decision=bindparam("a_decision"),
        comment=bindparam("a_comment"),
        decided_at=bindparam("a_at", type_=UtcDateTime()),
        decided_by_id=bindparam("a_user", type_=Uuid()),
        actor_role=bindparam("a_role"),
        file_sha256=bindparam("a_sha256"),
        file_version=bindparam("a_version", type_=Integer()),
    )
    .returning(Approval.id, _OTHERS_WAITING)
    .execution_options(synchronize_session=False)
)
_WAITING = (
    select(func.count())
    .select_from(Approval)
    .where(
        Approval.stage_id == bindparam("stage_id", type_=Uuid()),
        Approval.stale.is_(False),
        Approval.decision.is_(None),
    )
)


async def _all_answered(session: AsyncSession, stage_id: uuid.UUID) -> bool:
    """No live approval of the stage waits (read under the route lock: true once)."""
    return not (await fetch_rows(session, _WAITING, {"stage_id": stage_id}))[0][0]


async def decide_visa(
    session: AsyncSession,
    principal: Principal,
    document_id: uuid.UUID,
    data: schemas.VisaIn,
    now: dt.datetime,
    tz: str,
) -> schemas.VisaOut:
    """Visa the current stage of a visible document's route (the caller has checked that
    the principal may see it)."""
    cab = principal.cabinet(data.position_id, "decide")
    if data.decision != "approved" and not (data.comment and data.comment.strip()):
        raise Invalid(f"a '{data.decision}' visa needs a comment", field="comment")
    # The route lock first (the current route found and bumped in one UPDATE); the stage
    # and the file are read after it, so a new version cannot slip in between.
    locked = await fetch_rows(
        session, _LOCK_CURRENT_ROUTE, {"of_document": document_id, "in_state": "active"}
    )
    if not locked:
        found = await current_route(session, document_id)
        if found is None:
            raise Conflict("the document is not on a route")
        raise Conflict(f"no visa is expected: the route is '{found.state}'")
    route_id, current_stage = locked[0]
    if current_stage is None:
        raise Conflict("no visa is expected: the route is 'active'")
    found_stage = await fetch_rows(
        session,
        _STAGE_AND_FILE,
        {"document_id": document_id, "route_id": route_id, "index": current_stage},
    )
    if not found_stage:
        raise Conflict("no visa is expected: the route has no current stage")
    stage_id, stage_index, sha256, version, *facts = found_stage[0]
    doc = DocFacts(document_id, *facts)
    if sha256 is None:
        raise Conflict("the draft has no main file")
    if data.file_sha256 != sha256:
        raise Conflict(
            "the draft has a newer version; read it and decide again",
            current_sha256=sha256,
            current_version=version,
        )
    answered = await fetch_rows(
        session,
        _ANSWER,
        {
            "stage": stage_id,
            "position": data.position_id,
            "a_decision": data.decision,
            "a_comment": data.comment,
            "a_at": now,
            "a_user": principal.user.id,
            "a_role": cab.role,
            "a_sha256": sha256,
            "a_version": version,
        },
    )
    if not answered:
        asked = await session.scalar(
            select(Approval.id).where(
                Approval.stage_id == stage_id,
                Approval.position_id == data.position_id,
                Approval.stale.is_(False),
            )
        )
        if asked is not None:
            raise Conflict("this visa is already given")
        raise Conflict("no visa is expected from this position at this stage")
    approval_id, others_waiting = answered[0]
    # Its item closed, its audit event and its outbox event: one round trip.
    await run_writes(
        session,
        (
            close_items_of(session, approval_id, now),
            audit.event_write(
                action=f"visa.{data.decision}",
                user_id=principal.user.id,
                position_id=cab.position_id,
                actor_role=cab.role,
                document_id=document_id,
                object_type="approval",
                object_id=approval_id,
                details={
                    "decision": data.decision,
                    "comment": data.comment,
                    "file_sha256": sha256,
                    "version": version,
                    "stage": stage_index,
                },
                at=now,
            ),
            outbox.event_write(
                session,
                "visa.decided",
                now,
                document_id=document_id,
                positions=[doc.author_position_id],
                decision=data.decision,
                by_position=data.position_id,
            ),
        ),
    )
    route_state = "active"
    last = data.decision != "rejected" and others_waiting == 0
    if last:  # the route lock makes this true for one visa only
        route_state = (
            await _complete_stage(session, route_id, doc, stage_id, now, tz) or route_state
        )
    elif data.decision == "rejected":  # rare: on the ORM
        route = await session.get_one(Route, route_id, populate_existing=True)
        document = await session.get_one(Document, document_id)
        await _return_to_author(session, route, document, stage_id, now, data.comment)
        route_state = route.state
    return schemas.VisaOut(
        id=approval_id,
        document_id=document_id,
        position_id=data.position_id,
        decision=data.decision,
        comment=data.comment,
        decided_at=now,
        actor_role=cab.role,
        file_sha256=sha256,
        file_version=version,
        stage=stage_index,
        route_state=route_state,
    )


async def auto_visa_stage(
    session: AsyncSession, stage_id: uuid.UUID, now: dt.datetime, tz: str
) -> int:
    """Give the automatic visa to everyone who did not answer a stage past its deadline.
    Returns how many visas were put (0 if someone else got there first)."""
    stage = await session.get(RouteStage, stage_id)
    if stage is None:
        return 0
    route = await _lock_route(session, stage.route_id, ("active",))
    if route is None or route.current_stage != stage.index:
        return 0
    await session.refresh(stage)
    if stage.state != "active" or stage.due_at is None or stage.due_at > now:
        return 0
    doc = await session.get(Document, route.document_id)
    assert doc is not None
    f = await main_file(session, doc.id)
    rows = (
        await session.execute(
            update(Approval)
            .where(
                Approval.stage_id == stage.id,
                Approval.decision.is_(None),
                Approval.stale.is_(False),
            )
            .values(
                decision="approved",
                auto=True,
                decided_at=now,
                file_sha256=f.sha256,
                file_version=f.version,
            )
            .returning(Approval.id, Approval.position_id)
        )
    ).all()
    await close_items(session, now, ref_ids=[r[0] for r in rows])
    for approval_id, position_id in rows:
        record(
            session,
            action="visa.auto_approved",
            user_id=None,
            position_id=position_id,
            actor_role="system",
            document_id=doc.id,
            object_type="approval",
            object_id=approval_id,
            details={
                "decision": "approved",
                "auto": True,
                "deadline": stage.deadline.isoformat() if stage.deadline else None,
                "file_sha256": f.sha256,
                "version": f.version,
                "stage": stage.index,
            },
            at=now,
        )
    if rows:
        emit(
            session,
            "visa.auto_approved",
            now,
            document_id=doc.id,
            positions=[doc.author_position_id, *[r[1] for r in rows]],
        )
    if await _all_answered(session, stage.id):
        await _complete_stage(session, route.id, _facts(doc), stage.id, now, tz)
    await session.flush()
    return len(rows)


# --- versions --------------------------------------------------------------------------------


async def add_version(
    session: AsyncSession,
    principal: Principal,
    doc: Document,
    stored: StoredFile,
    now: dt.datetime,
) -> schemas.VersionOut:
    cab = principal.cabinet(doc.author_position_id, "decide")
    if doc.state not in EDITABLE_DOC_STATES:
        raise Conflict(f"a document in state '{doc.state}' takes no new version")
    found = await current_route(session, doc.id)
    route: Route | None = None
    if found is not None and found.state not in ("superseded", "cancelled"):
        route = await _lock_route(session, found.id, ("draft", "active", "returned"))
        if route is None:
            raise Conflict(f"the route is '{found.state}'; return the draft before a new version")
    old = await main_file(session, doc.id)
    took = await session.execute(
        update(DocumentFile)
        .where(DocumentFile.id == old.id, DocumentFile.is_current.is_(True))
        .values(is_current=False)
    )
    if took.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("another version was uploaded at the same time")
    new = DocumentFile(
        id=new_id(),
        document_id=doc.id,
        slot_id=old.slot_id,
        role=old.role,
        name=stored.name,
        mime=stored.mime,
        size=stored.size,
        sha256=stored.sha256,
        version=old.version + 1,
        pages=stored.pages,
        is_current=True,
        created_at=now,
        created_by_id=principal.user.id,
    )
    session.add(new)
    stale: list[tuple[uuid.UUID, uuid.UUID]] = []
    reasked: list[uuid.UUID] = []
    if route is not None:
        stale = [
            (s, p)
            for s, p in (
                await session.execute(
                    update(Approval)
                    .where(
                        Approval.route_id == route.id,
                        Approval.stale.is_(False),
                        Approval.decision.is_not(None),
                    )
                    .values(stale=True)
                    .returning(Approval.stage_id, Approval.position_id)
                )
            ).all()
        ]
        if route.state == "active" and route.current_stage is not None:
            stage = await _current_stage(session, route)
            for stage_id, pid in stale:
                if stage_id == stage.id:
                    await _ask(session, route.id, _facts(doc), stage.id, stage.deadline, pid, now)
                    reasked.append(pid)
            if reasked:
                emit(
                    session,
                    "visa.requested",
                    now,
                    document_id=doc.id,
                    positions=reasked,
                    folder="visa",
                    reason="new_version",
                )
    record(
        session,
        action="document.version_added",
        user_id=principal.user.id,
        position_id=cab.position_id,
        actor_role=cab.role,
        document_id=doc.id,
        object_type="file",
        object_id=new.id,
        details={
            "file_sha256": new.sha256,
            "version": new.version,
            "previous_sha256": old.sha256,
            "stale_visas": len(stale),
        },
        at=now,
    )
    await session.flush()
    return schemas.VersionOut(
        new.id,
        new.name,
        new.mime,
        new.size,
        new.sha256,
        new.version,
        new.pages,
        len(stale),
        reasked,
    )


# --- signing and registration ----------------------------------------------------------------


async def complete_signatory_step(
    session: AsyncSession,
    *,
    document_id: uuid.UUID,
    position_id: uuid.UUID,
    user_id: uuid.UUID,
    actor_role: str,
    file_sha256: str,
    now: dt.datetime,
    tz: str,
    signature_id: uuid.UUID | None = None,
) -> RouteSignatory:
    """Record that `position_id` signed the current version. Called by the signing flow
    after it verified the signature and the signer's right; the caller commits. The last
    signature registers the document in the route's journal and delivers it."""
    doc = await session.get(Document, document_id)
    if doc is None:
        raise NotFound("document not found")
    found = await current_route(session, document_id)
    if found is None:
        raise Conflict("the document is not on a route")
    route = await _lock_route(session, found.id, ("signing",))
    if route is None:
        raise Conflict(f"no signature is expected: the route is '{found.state}'")
    f = await main_file(session, document_id)
    if file_sha256 != f.sha256:
        raise Conflict(
            "the draft has a newer version", current_sha256=f.sha256, current_version=f.version
        )
    step_id = (
        await session.execute(
            update(RouteSignatory)
            .where(
                RouteSignatory.route_id == route.id,
                RouteSignatory.position_id == position_id,
                RouteSignatory.state == "waiting",
            )
            .values(
                state="signed",
                signed_at=now,
                signed_by_id=user_id,
                actor_role=actor_role,
                file_sha256=f.sha256,
                signature_id=signature_id,
            )
            .returning(RouteSignatory.id)
        )
    ).scalar_one_or_none()
    if step_id is None:
        raise Conflict("no signature is expected from this position now")
    await close_items(session, now, ref_ids=[step_id])
    step = await session.get_one(RouteSignatory, step_id, populate_existing=True)
    record(
        session,
        action="document.signed",
        user_id=user_id,
        position_id=position_id,
        actor_role=actor_role,
        document_id=document_id,
        object_type="signatory",
        object_id=step_id,
        details={"file_sha256": f.sha256, "version": f.version, "order": step.order},
        at=now,
    )
    # Columns, not the ORM object: _ask_signature updates the row past the ORM.
    nxt = (
        await session.execute(
            select(RouteSignatory.id, RouteSignatory.position_id)
            .where(RouteSignatory.route_id == route.id, RouteSignatory.order > step.order)
            .order_by(RouteSignatory.order)
            .limit(1)
        )
    ).first()
    if nxt is not None:
        await _ask_signature(session, _facts(doc), nxt[0], nxt[1], now)
    else:
        await _register(session, route, doc, now, tz)
    await session.flush()
    return step


async def _register(
    session: AsyncSession, route: Route, doc: Document, now: dt.datetime, tz: str
) -> None:
    assert route.journal_id is not None
    number, seq = await next_registration_number(session, route.journal_id)
    today = region_today(tz, now)
    await session.execute(
        update(Document)
        .where(Document.id == doc.id)
        .values(
            state="registered",
            journal_id=route.journal_id,
            reg_number=number,
            reg_seq=seq,
            reg_date=today,
        )
    )
    doc.state, doc.reg_number, doc.reg_seq, doc.reg_date = "registered", number, seq, today
    doc.journal_id = route.journal_id
    await session.execute(
        update(Route).where(Route.id == route.id).values(state="completed", finished_at=now)
    )
    route.state = "completed"
    addressees = (
        await session.execute(
            select(DocumentAddressee.position_id, DocumentAddressee.mode).where(
                DocumentAddressee.document_id == doc.id
            )
        )
    ).all()
    for pid, mode in addressees:
        open_item(
            session,
            position_id=pid,
            folder=mode,
            document_id=doc.id,
            ref_id=None,
            action="resolve" if mode == "resolve" else "read",
            at=now,
            deadline=doc.deadline,
            urgent=doc.urgent,
        )
    record(
        session,
        action="document.registered",
        user_id=None,
        actor_role="system",
        document_id=doc.id,
        object_type="document",
        object_id=doc.id,
        details={"reg_number": number, "journal_id": str(route.journal_id)},
        at=now,
    )
    emit(
        session,
        "document.delivered",
        now,
        document_id=doc.id,
        positions=[pid for pid, _ in addressees],
        reg_number=number,
    )


# --- forwarding ------------------------------------------------------------------------------


async def forward(
    session: AsyncSession,
    principal: Principal,
    doc: Document,
    data: schemas.ForwardIn,
    now: dt.datetime,
) -> schemas.ForwardOut:
    """Переадресация: the document leaves this position's `resolve` for another's."""
    cab = principal.cabinet(data.position_id, "decide")
    if data.to_position_id == data.position_id:
        raise Invalid("forward to another position", field="to_position_id")
    target = await session.get(Position, data.to_position_id)
    if target is None:
        raise Invalid("unknown position", field="to_position_id")
    if doc.access_level == "dsp" and not target.dsp_cleared:
        raise Forbidden("the position is not cleared for ДСП documents")
    closed = await close_items(
        session, now, document_id=doc.id, position_id=data.position_id, folder="resolve"
    )
    if closed == 0:
        raise Conflict("the document is not waiting in this position's `resolve` folder")
    already = await session.scalar(
        select(func.count())
        .select_from(CabinetItem)
        .where(
            and_(
                CabinetItem.document_id == doc.id,
                CabinetItem.position_id == data.to_position_id,
                CabinetItem.folder == "resolve",
                CabinetItem.state == ITEM_OPEN,
            )
        )
    )
    if not already:
        open_item(
            session,
            position_id=data.to_position_id,
            folder="resolve",
            document_id=doc.id,
            ref_id=None,
            action="resolve",
            at=now,
            deadline=doc.deadline,
            urgent=doc.urgent,
        )
    record(
        session,
        action="document.forwarded",
        user_id=principal.user.id,
        position_id=cab.position_id,
        actor_role=cab.role,
        document_id=doc.id,
        object_type="document",
        object_id=doc.id,
        details={"to_position_id": str(data.to_position_id), "note": data.note},
        at=now,
    )
    emit(
        session,
        "document.forwarded",
        now,
        document_id=doc.id,
        positions=[data.to_position_id],
        folder="resolve",
    )
    await session.flush()
    return schemas.ForwardOut(doc.id, data.position_id, data.to_position_id, now)
