"""May a principal see a document? One query, used by every document endpoint.

A position sees a document it authored, is addressed, or has (or had) an item for in its
cabinet. "ДСП" documents only through a position cleared for them. Anything else is 404,
so ids of other people's documents reveal nothing.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.models import CabinetItem, Document, DocumentAddressee
from backend.domain.accounts.access import Principal
from backend.errors import NotFound


async def _linked(
    session: AsyncSession, document_id: uuid.UUID, positions: list[uuid.UUID]
) -> bool:
    """Has any of these positions (had) an item for the document, or is it an addressee?"""
    item = await session.scalar(
        select(CabinetItem.id)
        .where(CabinetItem.document_id == document_id, CabinetItem.position_id.in_(positions))
        .limit(1)
    )
    if item is not None:
        return True
    addressee = await session.scalar(
        select(DocumentAddressee.position_id)
        .where(
            DocumentAddressee.document_id == document_id,
            DocumentAddressee.position_id.in_(positions),
        )
        .limit(1)
    )
    return addressee is not None


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
    if doc.author_position_id in allowed or await _linked(session, document_id, allowed):
        return doc
    raise NotFound("document not found")
