"""Resolutions, assignments and templates: thin handlers over resolutions.services."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.clock import region_today, utcnow
from backend.db.models import Position, Resolution
from backend.domain.accounts.access import Principal
from backend.domain.documents.visibility import visible_document
from backend.domain.resolutions import schemas, services
from backend.domain.resolutions.card import assignment_out, resolution_tree
from backend.web.deps import Services
from backend.web.idempotency import run_decision


async def _resolution_out(
    db: AsyncSession, svc: Services, document_id: uuid.UUID, resolution_id: uuid.UUID
) -> schemas.ResolutionOut:
    today = region_today(svc.settings.timezone)
    return (await resolution_tree(db, document_id, today, only=resolution_id))[0]


# A resolution decision: (now, region day) -> the resolution it wrote or changed.
Act = Callable[[dt.datetime, dt.date], Awaitable[Resolution]]


async def _decided(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    principal: Principal,
    svc: Services,
    body: object,
    act: Act,
) -> Response[bytes]:
    """Run `act` as one idempotent decision; answer with the resolution as it now stands."""

    async def decide() -> schemas.ResolutionOut:
        now = utcnow()
        res = await act(now, region_today(svc.settings.timezone, now))
        return await _resolution_out(db, svc, res.document_id, res.id)

    return await run_decision(request, db, principal, body, decide)


class ResolutionController(Controller):
    path = "/api/v1"
    tags = ["resolutions"]

    @post("/documents/{document_id:uuid}/resolutions", operation_id="createResolution")
    async def create(
        self,
        request: Request[Any, Any, Any],
        document_id: uuid.UUID,
        data: schemas.ResolutionIn,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
    ) -> Response[bytes]:
        """Write a resolution (or, with `draft: true`, prepare one for the executive)."""
        doc = await visible_document(db, principal, document_id)
        return await _decided(
            request,
            db,
            principal,
            svc,
            data,
            lambda now, today: services.create_resolution(db, principal, doc, data, now, today),
        )

    @get("/resolutions/{resolution_id:uuid}", operation_id="resolution")
    async def get_one(
        self, resolution_id: uuid.UUID, principal: Principal, db: AsyncSession, svc: Services
    ) -> schemas.ResolutionOut:
        """One resolution with its assignments and child resolutions."""
        res, _ = await services._resolution(db, principal, resolution_id)
        return await _resolution_out(db, svc, res.document_id, res.id)

    @post("/resolutions/{resolution_id:uuid}/issue", operation_id="issueResolution")
    async def issue(
        self,
        request: Request[Any, Any, Any],
        resolution_id: uuid.UUID,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
        data: schemas.IssueIn | None = None,
    ) -> Response[bytes]:
        """Issue a draft resolution as is or with edits: the assignments are given."""
        edits = data or schemas.IssueIn()
        return await _decided(
            request,
            db,
            principal,
            svc,
            edits,
            lambda now, today: services.issue_resolution(
                db, principal, resolution_id, edits, now, today
            ),
        )

    @post("/resolutions/{resolution_id:uuid}/reject", operation_id="rejectResolution")
    async def reject(
        self,
        request: Request[Any, Any, Any],
        resolution_id: uuid.UUID,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
        data: schemas.CommentIn | None = None,
    ) -> Response[bytes]:
        """Reject a draft resolution with an optional comment."""
        body = data or schemas.CommentIn()
        return await _decided(
            request,
            db,
            principal,
            svc,
            body,
            lambda now, _: services.reject_resolution(
                db, principal, resolution_id, body.comment, now
            ),
        )

    @post("/resolutions/{resolution_id:uuid}/return", operation_id="returnResolution")
    async def return_to_assistant(
        self,
        request: Request[Any, Any, Any],
        resolution_id: uuid.UUID,
        data: schemas.ReturnIn,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
    ) -> Response[bytes]:
        """Return an assistant's draft for rework with a comment (вернуть помощнику)."""
        return await _decided(
            request,
            db,
            principal,
            svc,
            data,
            lambda now, _: services.return_resolution(
                db, principal, resolution_id, data.comment, now
            ),
        )

    @post("/resolutions/{resolution_id:uuid}/resubmit", operation_id="resubmitResolution")
    async def resubmit(
        self,
        request: Request[Any, Any, Any],
        resolution_id: uuid.UUID,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
        data: schemas.IssueIn | None = None,
    ) -> Response[bytes]:
        """The assistant puts a returned draft, reworked, back in the executive's `drafts`."""
        edits = data or schemas.IssueIn()
        return await _decided(
            request,
            db,
            principal,
            svc,
            edits,
            lambda now, today: services.resubmit_resolution(
                db, principal, resolution_id, edits, now, today
            ),
        )

    @post("/resolutions/{resolution_id:uuid}/cancel", operation_id="cancelResolution")
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        resolution_id: uuid.UUID,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
        data: schemas.CommentIn | None = None,
    ) -> Response[bytes]:
        """Cancel an issued resolution: its assignments and the resolutions written under
        it (with theirs) are cancelled and leave folders."""
        body = data or schemas.CommentIn()
        return await _decided(
            request,
            db,
            principal,
            svc,
            body,
            lambda now, _: services.cancel_resolution(
                db, principal, resolution_id, body.comment, now
            ),
        )

    @get("/resolution-templates", operation_id="resolutionTemplates")
    async def templates(
        self, position_id: uuid.UUID, principal: Principal, db: AsyncSession
    ) -> list[schemas.TemplateOut]:
        """Frequent resolution texts of an executive."""
        rows = await services.templates(db, principal, position_id)
        return [schemas.TemplateOut(t.id, t.position_id, t.text) for t in rows]

    @post("/resolution-templates", operation_id="addResolutionTemplate", status_code=201)
    async def add_template(
        self, data: schemas.TemplateIn, principal: Principal, db: AsyncSession
    ) -> schemas.TemplateOut:
        """Add a frequent resolution text for an executive."""
        t = await services.add_template(db, principal, data, utcnow())
        await db.commit()
        return schemas.TemplateOut(t.id, t.position_id, t.text)

    @delete(
        "/resolution-templates/{template_id:uuid}",
        operation_id="deleteResolutionTemplate",
        status_code=204,
    )
    async def delete_template(
        self, template_id: uuid.UUID, principal: Principal, db: AsyncSession
    ) -> None:
        """Delete a template."""
        await services.delete_template(db, principal, template_id)
        await db.commit()


class AssignmentController(Controller):
    path = "/api/v1/assignments"
    tags = ["resolutions"]

    async def _out(self, db: AsyncSession, svc: Services, a: Any) -> schemas.AssignmentOut:
        title = await db.scalar(select(Position.title).where(Position.id == a.executor_position_id))
        return assignment_out(
            a, {a.executor_position_id: title or ""}, region_today(svc.settings.timezone)
        )

    @post("/{assignment_id:uuid}/report", operation_id="reportAssignment")
    async def report(
        self,
        request: Request[Any, Any, Any],
        assignment_id: uuid.UUID,
        data: schemas.ReportIn,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
    ) -> Response[bytes]:
        """Report execution of an assignment."""

        async def decide() -> schemas.AssignmentOut:
            a = await services.report(db, principal, assignment_id, data.text, utcnow())
            return await self._out(db, svc, a)

        return await run_decision(request, db, principal, data, decide)

    @post("/{assignment_id:uuid}/accept-report", operation_id="acceptReport")
    async def accept_report(
        self,
        request: Request[Any, Any, Any],
        assignment_id: uuid.UUID,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
        data: schemas.CommentIn | None = None,
    ) -> Response[bytes]:
        """The controller accepts the execution report."""
        return await self._review(request, assignment_id, principal, db, svc, data, True)

    @post("/{assignment_id:uuid}/return-report", operation_id="returnReport")
    async def return_report(
        self,
        request: Request[Any, Any, Any],
        assignment_id: uuid.UUID,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
        data: schemas.CommentIn | None = None,
    ) -> Response[bytes]:
        """The controller returns the report: the assignment is back in `execute`."""
        return await self._review(request, assignment_id, principal, db, svc, data, False)

    async def _review(
        self,
        request: Request[Any, Any, Any],
        assignment_id: uuid.UUID,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
        data: schemas.CommentIn | None,
        accepted: bool,
    ) -> Response[bytes]:
        body = data or schemas.CommentIn()

        async def decide() -> schemas.AssignmentOut:
            a = await services.review_report(
                db, principal, assignment_id, accepted, body.comment, utcnow()
            )
            return await self._out(db, svc, a)

        return await run_decision(request, db, principal, body, decide)

    @post("/{assignment_id:uuid}/remove-from-control", operation_id="removeFromControl")
    async def remove_from_control(
        self,
        request: Request[Any, Any, Any],
        assignment_id: uuid.UUID,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
        data: schemas.CommentIn | None = None,
    ) -> Response[bytes]:
        """Remove the assignment from control: it leaves the controller's `control`."""
        body = data or schemas.CommentIn()

        async def decide() -> schemas.AssignmentOut:
            a = await services.remove_from_control(
                db, principal, assignment_id, body.comment, utcnow()
            )
            return await self._out(db, svc, a)

        return await run_decision(request, db, principal, body, decide)
