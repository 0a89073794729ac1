"""The audit trail: one row per decision or security event, written in the same
transaction as the change it describes."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, TypedDict, Unpack

from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.fastread import Write, insert_write, run_writes
from backend.db.ids import new_id
from backend.db.models import AuditEvent, utcnow


class EventFields(TypedDict, total=False):
    """What an audit event says besides its action and user (all optional)."""

    position_id: uuid.UUID | None
    actor_role: str | None
    document_id: uuid.UUID | None
    object_type: str | None
    object_id: uuid.UUID | None
    details: dict[str, Any] | None
    at: dt.datetime | None


def _row(action: str, user_id: uuid.UUID | None, fields: EventFields) -> dict[str, Any]:
    return {
        "id": new_id(),
        "at": fields.get("at") or utcnow(),
        "user_id": user_id,
        "position_id": fields.get("position_id"),
        "actor_role": fields.get("actor_role"),
        "action": action,
        "document_id": fields.get("document_id"),
        "object_type": fields.get("object_type"),
        "object_id": fields.get("object_id"),
        "details": fields.get("details") or {},
    }


def record(
    session: AsyncSession,
    *,
    action: str,
    user_id: uuid.UUID | None,
    **fields: Unpack[EventFields],
) -> AuditEvent:
    """Add the event to the session: written with the session's next flush."""
    event = AuditEvent(**_row(action, user_id, fields))
    session.add(event)
    return event


def event_write(*, action: str, user_id: uuid.UUID | None, **fields: Unpack[EventFields]) -> Write:
    """The same event as a write for `run_writes`: with a decision's other writes in one
    round trip (the visa, on every request)."""
    return insert_write(AuditEvent, _row(action, user_id, fields))


async def record_now(
    session: AsyncSession,
    *,
    action: str,
    user_id: uuid.UUID | None,
    **fields: Unpack[EventFields],
) -> None:
    """The same event, inserted at once without the ORM."""
    await run_writes(session, (event_write(action=action, user_id=user_id, **fields),))
