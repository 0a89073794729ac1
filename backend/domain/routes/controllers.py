"""Routes, versions, visas and forwarding of documents: thin handlers over routes.services."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
from litestar import Controller, Request, Response, post
from litestar.datastructures import UploadFile
from sqlalchemy.ext.asyncio import AsyncSession

from backend.clock import utcnow
from backend.domain.accounts.access import Principal
from backend.domain.documents.services import Upload, store_upload
from backend.domain.documents.visibility import ensure_visible, visible_document
from backend.domain.routes import schemas, services
from backend.domain.routes.card import route_out
from backend.errors import Invalid
from backend.web.deps import Services
from backend.web.idempotency import run_decision


class RouteController(Controller):
    path = "/api/v1/documents"
    tags = ["routes"]

    @post("/{document_id:uuid}/route", operation_id="setRoute", status_code=201)
    async def set_route(
        self,
        request: Request[Any, Any, Any],
        document_id: uuid.UUID,
        data: schemas.RouteIn,
        principal: Principal,
        db: AsyncSession,
    ) -> Response[bytes]:
        """Set (or, before start or after a return, replace) the route of a draft."""
        doc = await visible_document(db, principal, document_id)

        async def decide() -> schemas.RouteOut:
            route = await services.set_route(db, principal, doc, data, utcnow())
            return await route_out(db, route.id)

        return await run_decision(request, db, principal, data, decide)

    @post("/{document_id:uuid}/route/start", operation_id="startRoute", status_code=201)
    async def start_route(
        self,
        request: Request[Any, Any, Any],
        document_id: uuid.UUID,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
    ) -> Response[bytes]:
        """Start the route (or restart it after a return): the first stage is asked."""
        doc = await visible_document(db, principal, document_id)

        async def decide() -> schemas.RouteOut:
            route = await services.start_route(db, principal, doc, utcnow(), svc.settings.timezone)
            return await route_out(db, route.id)

        return await run_decision(request, db, principal, {"start": str(document_id)}, decide)

    @post("/{document_id:uuid}/versions", operation_id="addVersion", status_code=201)
    async def add_version(
        self,
        request: Request[Any, Any, Any],
        document_id: uuid.UUID,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
    ) -> Response[bytes]:
        """Upload a new version of the draft's main file (multipart `file`); decided visas
        become stale and the current stage is asked again."""
        doc = await visible_document(db, principal, document_id)
        principal.cabinet(doc.author_position_id, "decide")
        form = await request.form()
        parts = form.getall("file") if "file" in form else []
        if len(parts) != 1 or not isinstance(parts[0], UploadFile):
            raise Invalid("exactly one multipart part 'file' is required", field="file")
        up = parts[0]
        stored = await anyio.to_thread.run_sync(
            store_upload, svc.blobs, svc.settings, Upload(up.filename, up.content_type, up.file)
        )

        async def decide() -> schemas.VersionOut:
            return await services.add_version(db, principal, doc, stored, utcnow())

        return await run_decision(request, db, principal, {"sha256": stored.sha256}, decide)

    @post("/{document_id:uuid}/visas", operation_id="visa", status_code=201)
    async def visa(
        self,
        request: Request[Any, Any, Any],
        document_id: uuid.UUID,
        data: schemas.VisaIn,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
    ) -> Response[bytes]:
        """Visa the version named by `file_sha256`: approved, with remarks, or rejected."""
        await ensure_visible(db, principal, document_id)

        async def decide() -> schemas.VisaOut:
            return await services.decide_visa(
                db, principal, document_id, data, utcnow(), svc.settings.timezone
            )

        return await run_decision(request, db, principal, data, decide)

    @post("/{document_id:uuid}/forward", operation_id="forwardDocument", status_code=201)
    async def forward(
        self,
        request: Request[Any, Any, Any],
        document_id: uuid.UUID,
        data: schemas.ForwardIn,
        principal: Principal,
        db: AsyncSession,
    ) -> Response[bytes]:
        """Forward (переадресовать) a document from this position's `resolve` to another's."""
        doc = await visible_document(db, principal, document_id)

        async def decide() -> schemas.ForwardOut:
            return await services.forward(db, principal, doc, data, utcnow())

        return await run_decision(request, db, principal, data, decide)
