"""Opening and closing cabinet items: the workflow's only way to fill and empty folders.
Each notes the cabinets it changed (cabinet/marks.py), so their cached counts go."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, NotRequired, TypedDict, Unpack

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from backend.db.fastread import Write, insert_row
from backend.db.ids import new_id
from backend.db.models import ITEM_OPEN, CabinetItem, UtcDateTime
from backend.domain.cabinet.marks import touch


class ItemFields(TypedDict):
    position_id: uuid.UUID
    folder: str
    document_id: uuid.UUID
    ref_id: uuid.UUID | None
    action: str
    at: dt.datetime
    deadline: NotRequired[dt.date | None]
    urgent: NotRequired[bool]


def _item_row(fields: ItemFields) -> dict[str, Any]:
    return {
        "id": new_id(),
        "position_id": fields["position_id"],
        "folder": fields["folder"],
        "document_id": fields["document_id"],
        "ref_id": fields["ref_id"],
        "state": "open",
        "expected_action": fields["action"],
        "deadline": fields.get("deadline"),
        "urgent": fields.get("urgent", False),
        "unread": True,
        "received_at": fields["at"],
    }


def open_item(session: AsyncSession, **fields: Unpack[ItemFields]) -> CabinetItem:
    """Add the item to the session: written with the session's next flush."""
    item = CabinetItem(**_item_row(fields))
    session.add(item)  # noted for its cabinet's mark when flushed (cabinet/marks.py)
    return item


async def open_item_now(session: AsyncSession, **fields: Unpack[ItemFields]) -> None:
    """The same item, inserted at once without the ORM (a route moving on a visa)."""
    await insert_row(session, CabinetItem, _item_row(fields))
    touch(session, (fields["position_id"],))


async def close_items(
    session: AsyncSession,
    at: dt.datetime,
    *,
    ref_ids: list[uuid.UUID] | None = None,
    document_id: uuid.UUID | None = None,
    position_id: uuid.UUID | None = None,
    folder: str | None = None,
) -> int:
    conditions = [CabinetItem.state == ITEM_OPEN]
    if ref_ids is not None:
        if not ref_ids:
            return 0
        conditions.append(CabinetItem.ref_id.in_(ref_ids))
    if document_id is not None:
        conditions.append(CabinetItem.document_id == document_id)
    if position_id is not None:
        conditions.append(CabinetItem.position_id == position_id)
    if folder is not None:
        conditions.append(CabinetItem.folder == folder)
    closed = (
        await session.execute(
            update(CabinetItem)
            .where(*conditions)
            .values(state="done", done_at=at)
            .returning(CabinetItem.position_id)
        )
    ).all()
    touch(session, (p for (p,) in closed))
    return len(closed)


_CLOSE_OF = (
    update(CabinetItem)
    .where(CabinetItem.ref_id == bindparam("ref", type_=Uuid()), CabinetItem.state == ITEM_OPEN)
    .values(state="done", done_at=bindparam("done", type_=UtcDateTime()))
    .returning(CabinetItem.position_id)
    .execution_options(synchronize_session=False)
)


def close_items_of(session: AsyncSession, ref_id: uuid.UUID, at: dt.datetime) -> Write:
    """Closing the open items of one answered approval, as a write for `run_writes`
    (backend/db/fastread.py): the visa runs it with its audit and outbox events in one
    round trip."""

    def closed(rows: Sequence[Sequence[Any]]) -> None:
        touch(session, (p for (p,) in rows))

    return Write(_CLOSE_OF, {"ref": ref_id, "done": at}, closed)
