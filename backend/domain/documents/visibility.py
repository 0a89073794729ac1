"""May a principal see a document? One query, used by every document endpoint.

A position sees a document it authored, is addressed, or has (or had) an item for in its
cabinet. "ДСП" documents only through a position cleared for them. Anything else is 404,
so ids of other people's documents reveal nothing.
"""

from __future__ import annotations

import uuid

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.models import CabinetItem, Document, DocumentAddressee
from backend.domain.accounts.access import Principal
from backend.errors import NotFound


def _seen_by(document_id: object, positions: list[uuid.UUID]) -> object:
    return or_(
        Document.author_position_id.in_(positions),
        exists().where(
            CabinetItem.document_id == document_id, CabinetItem.position_id.in_(positions)
        ),
        exists().where(
            DocumentAddressee.document_id == document_id,
            DocumentAddressee.position_id.in_(positions),
        ),
    )


async def visible_document(
    session: AsyncSession, principal: Principal, document_id: uuid.UUID
) -> Document:
    positions = principal.readable_positions
    doc = await session.scalar(select(Document).where(Document.id == document_id))
    if doc is None or not positions:
        raise NotFound("document not found")
    allowed = principal.dsp_positions if doc.access_level == "dsp" else positions
    if not allowed:
        raise NotFound("document not found")
    ok = await session.scalar(select(_seen_by(document_id, allowed)))  # type: ignore[arg-type]
    if doc.author_position_id in allowed or ok:
        return doc
    raise NotFound("document not found")
