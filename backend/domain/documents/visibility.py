"""May a principal see a document? One statement, used by every document endpoint.

A position sees a document it authored, is addressed, or has (or had) an item for in its
cabinet. "ДСП" documents only through a position cleared for them. Anything else is 404,
so ids of other people's documents reveal nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, bindparam, exists, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from backend.db.fastread import AnySelect, fetch_rows, fetch_together
from backend.db.models import AuditEvent, CabinetItem, Document, DocumentAddressee
from backend.domain.accounts.access import Principal
from backend.errors import NotFound

_NOT_FOUND = "document not found"


# One statement per number of positions (a principal reads through a handful: own,
# assistant, acting) and per need of the revision, so few variants are ever built.
@lru_cache(maxsize=64)
def _visibility_statement(positions: int, revision: bool) -> Select[Any]:
    """Access level, author, "linked to one of these positions" and, if asked, the
    revision, in one statement with one bind parameter per position (fastread runs it)."""
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
        if revision
        else literal(0)
    )
    return select(
        Document.access_level, Document.author_position_id, linked.label("linked"), events
    ).where(Document.id == bindparam("document_id", type_=Uuid()))


async def _visibility(
    session: AsyncSession, document_id: uuid.UUID, positions: list[uuid.UUID], revision: bool
) -> tuple[str, uuid.UUID, bool, int]:
    params: dict[str, Any] = {f"p{i}": p for i, p in enumerate(positions)}
    params["document_id"] = document_id
    rows = await fetch_rows(session, _visibility_statement(len(positions), revision), params)
    if not rows:
        raise NotFound(_NOT_FOUND)
    access_level, author, linked, events = rows[0]
    return access_level, author, bool(linked), int(events)


async def _check(
    session: AsyncSession, principal: Principal, document_id: uuid.UUID, revision: bool
) -> int:
    """The rule, once: 404 unless the principal may see the document; else the revision
    (0 when not asked for)."""
    positions = sorted(set(principal.readable_positions))
    if not positions:
        raise NotFound(_NOT_FOUND)
    access_level, author, linked, events = await _visibility(
        session, document_id, positions, revision
    )
    if access_level == "dsp":
        cleared = sorted(set(principal.dsp_positions))
        if not cleared:
            raise NotFound(_NOT_FOUND)
        if cleared != positions:
            # Linked through an uncleared position does not count for ДСП: ask again.
            access_level, author, linked, events = await _visibility(
                session, document_id, cleared, revision
            )
        positions = cleared
    if author in positions or linked:
        return events
    raise NotFound(_NOT_FOUND)


async def visible_revision(
    session: AsyncSession, principal: Principal, document_id: uuid.UUID
) -> int:
    """404 unless the principal may see the document; else its revision.

    The revision is the number of audit events of the document. Every decision on a
    document writes its audit event in the same transaction, so the number grows with
    each decision: a cache of anything derived from the document (the card) is keyed by
    it."""
    return await _check(session, principal, document_id, revision=True)


_with_parts: dict[tuple[int, int], tuple[tuple[AnySelect, ...], tuple[AnySelect, ...]]] = {}


def _visibility_and(positions: int, parts: tuple[AnySelect, ...]) -> tuple[AnySelect, ...]:
    """(the visibility statement with the revision, *parts), one constant tuple per
    position count and `parts`, as fetch_together wants it."""
    key = (positions, id(parts))
    hit = _with_parts.get(key)
    if hit is None or hit[0] is not parts:
        hit = (parts, (_visibility_statement(positions, True), *parts))
        _with_parts[key] = hit
    return hit[1]


async def visible_revision_with(
    session: AsyncSession,
    principal: Principal,
    document_id: uuid.UUID,
    parts: tuple[AnySelect, ...],
    params: Mapping[str, Any],
) -> tuple[int, list[Sequence[Sequence[Any]]]]:
    """visible_revision, and the rows of `parts` (a module-constant tuple of selects) read
    in the same round trip and the same snapshot as the revision, for a reader that
    needs them whenever the document is visible (a card not in the cache). The rows are
    read before the rule is applied and dropped unless it passes, so a refused request
    costs the reading too; `document_id` and the positions' `p0`… are bound here."""
    positions = sorted(set(principal.readable_positions))
    if not positions:
        raise NotFound(_NOT_FOUND)
    values = {**params, **{f"p{i}": p for i, p in enumerate(positions)}}
    values["document_id"] = document_id
    head, *rows = await fetch_together(session, _visibility_and(len(positions), parts), values)
    if not head:
        raise NotFound(_NOT_FOUND)
    access_level, author, linked, events = head[0]
    if access_level == "dsp":
        # The ДСП rule may need the cleared positions asked again: the rule as _check has
        # it. The revision stays the one read with the rows: one read later could count
        # a decision the rows do not show, and the card would be cached as newer than it is.
        await _check(session, principal, document_id, revision=False)
        return int(events), rows
    if author in positions or linked:
        return int(events), rows
    raise NotFound(_NOT_FOUND)


async def ensure_visible(
    session: AsyncSession, principal: Principal, document_id: uuid.UUID
) -> None:
    """404 unless the principal may see the document; nothing is loaded (a decision that
    needs a few of its columns reads them with its own statements)."""
    await _check(session, principal, document_id, revision=False)


async def visible_document(
    session: AsyncSession, principal: Principal, document_id: uuid.UUID
) -> Document:
    """The document, or 404 unless the principal may see it."""
    await ensure_visible(session, principal, document_id)
    return await session.get_one(Document, document_id)
