"""The cabinet: folders with counts and their queues."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.clock import region_today
from backend.domain.accounts.access import Principal
from backend.domain.cabinet import services
from backend.domain.cabinet.schemas import FolderCount, QueuePage, ReadIn
from backend.web.deps import Services


class CabinetController(Controller):
    path = "/api/v1/cabinets/{position_id:uuid}"
    tags = ["cabinet"]

    @get("/folders", operation_id="folders")
    async def folders(
        self, position_id: uuid.UUID, principal: Principal, db: AsyncSession, svc: Services
    ) -> list[FolderCount]:
        """The seven folders of a cabinet with open, overdue and unread counts."""
        cabinet = principal.cabinet(position_id)
        today = region_today(svc.settings.timezone)
        return await services.cached_folder_counts(db, cabinet, today, svc.folder_counts)

    @get("/queue", operation_id="queue")
    async def queue(
        self,
        position_id: uuid.UUID,
        principal: Principal,
        db: AsyncSession,
        svc: Services,
        folder: str,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> QueuePage:
        """One page of a folder, newest first; pass `next_cursor` back for the next page."""
        cabinet = principal.cabinet(position_id)
        today = region_today(svc.settings.timezone)
        return await services.cached_queue(
            db, cabinet, folder, limit, cursor, today, svc.queue_pages
        )

    @post("/read", operation_id="markRead", status_code=204)
    async def mark_read(
        self, position_id: uuid.UUID, data: ReadIn, principal: Principal, db: AsyncSession
    ) -> None:
        """The user opened `document_id` in this cabinet: its items here are no longer new.

        Not a decision (no audit, no Idempotency-Key): repeating it changes nothing."""
        cabinet = principal.cabinet(position_id)
        await services.mark_read(db, cabinet, data.document_id)
        await db.commit()
