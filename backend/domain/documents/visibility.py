"""May a principal see a document? One query, used by every document endpoint.

A position sees a document it authored, is addressed, or has (or had) an item for in its
cabinet. "ДСП" documents only through a position cleared for them. Anything else is 404,
so ids of other people's documents reveal nothing.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, bindparam, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from backend.db.fastread import fetch_rows
from backend.db.models import AuditEvent, CabinetItem, Document, DocumentAddressee
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


# Principals read through a handful of positions (own, assistant, acting); beyond this
# the ORM path above answers.
_MAX_BOUND_POSITIONS = 16


@lru_cache(maxsize=_MAX_BOUND_POSITIONS)
def _revision_statement(positions: int) -> Select[Any]:
    """Access level, author, "linked to one of these positions", and the revision, in one
    statement with one bind parameter per position (so that fastread can run it)."""
    params = [bindparam(f"p{i}", type_=Uuid()) for i in range(positions)]
    linked = or_(
        exists().where(CabinetItem.document_id == Document.id, CabinetItem.position_id.in_(params)),
        exists().where(
            DocumentAddressee.document_id == Document.id,
            DocumentAddressee.position_id.in_(params),
        ),
    )
    events = (
        select(func.count())
        .where(AuditEvent.document_id == Document.id)
        .correlate(Document)
        .scalar_subquery()
    )
    return select(
        Document.access_level, Document.author_position_id, linked.label("linked"), events
    ).where(Document.id == bindparam("document_id", type_=Uuid()))


async def _revision_for(
    session: AsyncSession, document_id: uuid.UUID, positions: list[uuid.UUID]
) -> tuple[str, uuid.UUID, bool, int] | None:
    params: dict[str, Any] = {f"p{i}": p for i, p in enumerate(positions)}
    params["document_id"] = document_id
    rows = await fetch_rows(session, _revision_statement(len(positions)), params)
    if not rows:
        return None
    access_level, author, linked, events = rows[0]
    return access_level, author, bool(linked), int(events)


async def visible_revision(
    session: AsyncSession, principal: Principal, document_id: uuid.UUID
) -> int:
    """404 unless the principal may see the document; else its revision.

    The revision is the number of audit events of the document. Every change to a
    document is a decision, and every decision writes its audit event in the same
    transaction, so the number grows with each change: a cache of anything derived from
    the document (the card) is keyed by it."""
    positions = sorted(set(principal.readable_positions))
    if not positions or len(positions) > _MAX_BOUND_POSITIONS:
        doc = await visible_document(session, principal, document_id)
        return int(
            await session.scalar(select(func.count()).where(AuditEvent.document_id == doc.id)) or 0
        )
    found = await _revision_for(session, document_id, positions)
    if found is None:
        raise NotFound("document not found")
    access_level, author, linked, events = found
    if access_level == "dsp":
        cleared = sorted(set(principal.dsp_positions))
        if not cleared:
            raise NotFound("document not found")
        if cleared != positions:
            # Linked through an uncleared position does not count for ДСП: ask again.
            again = await _revision_for(session, document_id, cleared)
            if again is None:
                raise NotFound("document not found")
            access_level, author, linked, events = again
        positions = cleared
    if author in positions or linked:
        return events
    raise NotFound("document not found")
