"""Folder counts and keyset-paginated queues, served from `cabinet_items`' partial indexes."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Date,
    Integer,
    Select,
    bindparam,
    exists,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from backend.db.fastread import AnySelect, fetch_rows
from backend.db.models import (
    FOLDERS,
    ITEM_OPEN,
    AuditEvent,
    CabinetItem,
    CabinetMark,
    Correspondent,
    Document,
    DocumentFile,
    Position,
    UtcDateTime,
)
from backend.domain.accounts.access import Cabinet
from backend.domain.cabinet.marks import touch
from backend.domain.cabinet.schemas import FolderCount, QueueItem, QueuePage
from backend.errors import Invalid
from backend.ttl_cache import TtlCache


@lru_cache(maxsize=2)
def _counts_statement(open_only: bool) -> AnySelect:
    """Built once: constructing a statement costs more Python than running this one."""
    item = CabinetItem
    today = bindparam("today", type_=Date())
    query = (
        select(
            item.folder,
            func.count(),
            # FILTER, not SUM(CASE …): a third less PostgreSQL time over the governor's
            # 7,000 open items (SQLite has it since 3.30).
            func.count().filter(item.deadline < today),
            func.count().filter(item.unread.is_(True)),
        )
        .where(item.position_id == bindparam("position_id"), item.state == ITEM_OPEN)
        .group_by(item.folder)
    )
    if open_only:
        # Rare path (an uncleared assistant): pay for the join only here.
        query = query.join(Document, Document.id == item.document_id).where(
            Document.access_level == "open"
        )
    return query


async def folder_counts(
    session: AsyncSession, cabinet: Cabinet, today: dt.date
) -> list[FolderCount]:
    result = await fetch_rows(
        session,
        _counts_statement(not cabinet.dsp_cleared),
        {"position_id": cabinet.position_id, "today": today},
    )
    rows = {folder: (count, overdue, unread) for folder, count, overdue, unread in result}
    return [FolderCount(f, *map(int, rows.get(f, (0, 0, 0)))) for f in FOLDERS]


# Cached counts: (position, ДСП left out, region day) -> (the cabinet's mark, its counts).
# The mark is read on every request and decides; the TTL only bounds what an idle cabinet
# keeps.
FolderKey = tuple[uuid.UUID, bool, dt.date]
FolderCache = TtlCache[FolderKey, tuple[int, list[FolderCount]]]
_MARK = select(func.coalesce(func.sum(CabinetMark.version), 0)).where(
    CabinetMark.position_id == bindparam("position_id", type_=Uuid())
)


def folder_cache() -> FolderCache:
    return TtlCache(ttl_seconds=600, max_entries=20_000)


async def cached_folder_counts(
    session: AsyncSession, cabinet: Cabinet, today: dt.date, cache: FolderCache
) -> list[FolderCount]:
    """`folder_counts`, served again while the cabinet's mark (cabinet/marks.py) stands.

    The mark is read before the counts: a change committed in between shows in the counts
    and moves the mark past what is stored, so the next request recomputes; stored counts
    are never older than their mark. A viewer not cleared for ДСП counts only open
    documents' items: their own entry, keyed so, valid while the documents' access levels
    stand (see _mark)."""
    # No row: untouched since the data was loaded (0).
    mark = int((await fetch_rows(session, _MARK, {"position_id": cabinet.position_id}))[0][0])
    key = (cabinet.position_id, not cabinet.dsp_cleared, today)
    hit = cache.get(key)
    if hit is not None and hit[0] == mark:
        return hit[1]
    counts = await folder_counts(session, cabinet, today)
    cache.put(key, (mark, counts))
    return counts


def encode_cursor(received_at: dt.datetime, item_id: uuid.UUID) -> str:
    raw = f"{received_at.isoformat()}|{item_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at_s, id_s = raw.split("|")
        at = dt.datetime.fromisoformat(at_s)
        if at.tzinfo is None:
            raise ValueError("naive")
        return at, uuid.UUID(id_s)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid("malformed cursor", field="cursor") from exc


# The stamp a cached page is checked against (cached_queue): the cabinet's mark
# (cabinet/marks.py: any change to its items) and the number of audit events of the
# documents on the page (their revisions, documents/visibility.py: any decision on them, a
# new version or a registration included). Both only grow, so a page whose stamp is
# unchanged is the page the query would return now.
#
# A viewer not cleared for ДСП sees only open documents' items, so that page depends on
# the documents' access level too. It is set when a document is created and nothing
# changes it; a feature that does (lifting the ДСП mark) must touch the cabinets that hold
# the document's items (cabinet/marks.py), as any change to an item does.


def _mark() -> Any:
    return _MARK.scalar_subquery()


@lru_cache(maxsize=2)
def _check_statement(dialect: str) -> AnySelect:
    """The stamp of a cached page now, from the documents it holds: while the mark stands
    its items are the same, and the documents given skip the items' index (a third of
    this statement's PostgreSQL time). An array on PostgreSQL, so that the statement is one
    whatever the page's length; SQLite expands the list."""
    if dialect == "postgresql":
        ids = bindparam("ids", type_=postgresql.ARRAY(Uuid()))
        on_page = AuditEvent.document_id == func.any(ids)
    else:
        on_page = AuditEvent.document_id.in_(bindparam("ids", expanding=True))
    events = select(func.count()).where(on_page).scalar_subquery()
    return select(_mark(), events)


@lru_cache(maxsize=4)
def _queue_statement(after_cursor: bool, open_only: bool) -> Select[Any]:
    """The queue query, built once per variant with bind parameters. Every row also
    carries what the page's stamp is made of, read in the same snapshot as the rows: the
    cabinet's mark and its document's audit events (one index probe per row: a count
    over the page's items again was 30 % of the statement)."""
    item = CabinetItem
    conditions = [
        item.position_id == bindparam("position_id"),
        item.folder == bindparam("folder"),
        item.state == ITEM_OPEN,
    ]
    if after_cursor:
        conditions.append(
            tuple_(item.received_at, item.id)
            < tuple_(bindparam("at", type_=UtcDateTime()), bindparam("last_id", type_=Uuid()))
        )
    if open_only:
        # An uncleared assistant sees no ДСП items (see folder_counts).
        conditions.append(
            exists().where(Document.id == item.document_id, Document.access_level == "open")
        )
    # First the page of item ids from the index alone, then the documents for just those.
    page = (
        select(item)
        .where(*conditions)
        .order_by(item.received_at.desc(), item.id.desc())
        .limit(bindparam("limit", type_=Integer()))
        .subquery()
    )
    pages = (
        select(func.coalesce(func.sum(DocumentFile.pages), 0))
        .where(
            DocumentFile.document_id == Document.id,
            DocumentFile.is_current.is_(True),
            DocumentFile.role == "main",
        )
        .correlate(Document)
        .scalar_subquery()
    )
    # Not the item's folder (the one asked for) nor two urgency flags: every column is
    # decoded 20 times a request.
    return (
        select(
            page.c.id,
            page.c.document_id,
            page.c.deadline,
            or_(page.c.urgent, Document.urgent).label("urgent"),
            page.c.unread,
            page.c.received_at,
            page.c.expected_action,
            Document.kind,
            Document.title,
            Document.reg_number,
            Document.reg_date,
            Document.access_level,
            Position.title.label("author"),
            Correspondent.name.label("correspondent"),
            pages.label("pages"),
            _mark(),
            select(func.count())
            .where(AuditEvent.document_id == page.c.document_id)
            .scalar_subquery(),
        )
        .join(Document, Document.id == page.c.document_id)
        .join(Position, Position.id == Document.author_position_id)
        .outerjoin(Correspondent, Correspondent.id == Document.correspondent_id)
        .order_by(page.c.received_at.desc(), page.c.id.desc())
    )


Stamp = tuple[int, int]  # (the cabinet's mark, audit events of the page's documents)
# (position, ДСП left out, folder, limit, cursor, region day)
QueueKey = tuple[uuid.UUID, bool, str, int, str | None, dt.date]
# The stamp, the documents of the rows read (the page and the one after it), the page.
QueueCache = TtlCache[QueueKey, tuple[Stamp, list[uuid.UUID], QueuePage]]


def queue_cache() -> QueueCache:
    # What the stamp does not see is bounded by the TTL, as for cached cards
    # (documents/card_cache.py): a position or correspondent renamed (no endpoint does it
    # today), or a document field changed without an audit event (nothing does: every
    # write to one is a decision that records its event in the same transaction).
    return TtlCache(ttl_seconds=30, max_entries=2_000)


def _queue_params(cabinet: Cabinet, folder: str, limit: int, cursor: str | None) -> dict[str, Any]:
    if folder not in FOLDERS:
        raise Invalid(f"unknown folder '{folder}'; one of {', '.join(FOLDERS)}", field="folder")
    if not 1 <= limit <= 100:
        raise Invalid("limit must be between 1 and 100", field="limit")
    params: dict[str, Any] = {
        "position_id": cabinet.position_id,
        "folder": folder,
        "limit": limit + 1,
    }
    if cursor:
        params["at"], params["last_id"] = decode_cursor(cursor)
    return params


async def _read_page(
    session: AsyncSession,
    cabinet: Cabinet,
    folder: str,
    limit: int,
    cursor: str | None,
    today: dt.date,
) -> tuple[Stamp | None, list[uuid.UUID], QueuePage]:
    """The page, its stamp (None for an empty page) and its rows' documents."""
    params = _queue_params(cabinet, folder, limit, cursor)
    rows = await fetch_rows(
        session, _queue_statement(bool(cursor), not cabinet.dsp_cleared), params
    )
    # Each document once, as the check counts them (a document may hold two items).
    events = {row[1]: int(row[16]) for row in rows}
    stamp = (int(rows[0][15]), sum(events.values())) if rows else None
    documents = list(events)
    more = len(rows) > limit
    rows = rows[:limit]
    # Unpacked by position: named access on 17 columns × 20 rows was a tenth of the request
    # (15 columns now, and the stamp's two).
    items = [
        QueueItem(
            item_id=item_id,
            document_id=document_id,
            kind=kind,
            folder=folder,
            title=title,
            reg_number=reg_number,
            reg_date=reg_date,
            author=author,
            correspondent=correspondent,
            deadline=deadline,
            overdue=deadline is not None and deadline < today,
            urgent=bool(urgent),
            unread=bool(unread),
            pages=int(pages),
            received_at=received_at,
            expected_action=expected_action,
            access_level=access_level,
        )
        for (
            item_id,
            document_id,
            deadline,
            urgent,
            unread,
            received_at,
            expected_action,
            kind,
            title,
            reg_number,
            reg_date,
            access_level,
            author,
            correspondent,
            pages,
            *_stamp,
        ) in rows
    ]
    next_cursor = encode_cursor(rows[-1][5], rows[-1][0]) if more else None
    return stamp, documents, QueuePage(items, next_cursor)


async def queue(
    session: AsyncSession,
    cabinet: Cabinet,
    folder: str,
    limit: int,
    cursor: str | None,
    today: dt.date,
) -> QueuePage:
    """One page of a folder, read now."""
    return (await _read_page(session, cabinet, folder, limit, cursor, today))[2]


async def cached_queue(
    session: AsyncSession,
    cabinet: Cabinet,
    folder: str,
    limit: int,
    cursor: str | None,
    today: dt.date,
    cache: QueueCache,
) -> QueuePage:
    """`queue`, served again while its stamp (see _mark) stands.

    A page not cached is read with its stamp in one statement; a cached one costs one
    small statement (its stamp now, _check_statement), and a page whose stamp moved is
    read again. The key holds the region day, as `overdue` does, and whether ДСП
    documents are left out (a viewer not cleared for them: folder_counts), so that two
    viewers of one cabinet never share a page they would not both see. Input is checked
    where the page is read: a key made of bad input is never stored, so never found."""
    key = (cabinet.position_id, not cabinet.dsp_cleared, folder, limit, cursor, today)
    hit = cache.get(key)
    if hit is not None:
        stamp, documents, page = hit
        check = _check_statement(session.get_bind().dialect.name)
        ids = {"position_id": cabinet.position_id, "ids": documents}
        mark, events = (await fetch_rows(session, check, ids))[0]
        if (int(mark), int(events)) == stamp:
            return page
    read, documents, page = await _read_page(session, cabinet, folder, limit, cursor, today)
    if read is not None:
        cache.put(key, (read, documents, page))
    else:
        cache.forget(key)  # emptied: nothing to check the next request against
    return page


async def mark_read(session: AsyncSession, cabinet: Cabinet, document_id: uuid.UUID) -> None:
    """The document was opened in this cabinet: its open items there are no longer new.

    Per cabinet, not per person: an assistant opening a letter in the governor's cabinet
    has looked at it for that cabinet, as a secretary who opens the post does. Items of a
    document the cabinet has none of are simply not there, so nothing is revealed."""
    result = await session.execute(
        update(CabinetItem)
        .where(
            CabinetItem.position_id == cabinet.position_id,
            CabinetItem.document_id == document_id,
            CabinetItem.state == ITEM_OPEN,
            CabinetItem.unread.is_(True),
        )
        .values(unread=False),
        execution_options={"synchronize_session": False},
    )
    if result.rowcount:  # type: ignore[attr-defined]
        touch(session, (cabinet.position_id,))
