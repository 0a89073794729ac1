"""The audit trail: one row per decision or security event, written in the same
transaction as the change it describes."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.fastread import insert_row
from backend.db.ids import new_id
from backend.db.models import AuditEvent, utcnow


def _row(
    *,
    action: str,
    user_id: uuid.UUID | None,
    position_id: uuid.UUID | None,
    actor_role: str | None,
    document_id: uuid.UUID | None,
    object_type: str | None,
    object_id: uuid.UUID | None,
    details: dict[str, Any] | None,
    at: dt.datetime | None,
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "at": at or utcnow(),
        "user_id": user_id,
        "position_id": position_id,
        "actor_role": actor_role,
        "action": action,
        "document_id": document_id,
        "object_type": object_type,
        "object_id": object_id,
        "details": details or {},
    }


def record(
    session: AsyncSession,
    *,
    action: str,
    user_id: uuid.UUID | None,
    position_id: uuid.UUID | None = None,
    actor_role: str | None = None,
    document_id: uuid.UUID | None = None,
    object_type: str | None = None,
    object_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> AuditEvent:
    """Add the event to the session: written with the session's next flush."""
    event = AuditEvent(
        **_row(
            action=action,
            user_id=user_id,
            position_id=position_id,
            actor_role=actor_role,
            document_id=document_id,
            object_type=object_type,
            object_id=object_id,
            details=details,
            at=at,
        )
    )
    session.add(event)
    return event


async def record_now(
    session: AsyncSession,
    *,
    action: str,
    user_id: uuid.UUID | None,
    position_id: uuid.UUID | None = None,
    actor_role: str | None = None,
    document_id: uuid.UUID | None = None,
    object_type: str | None = None,
    object_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> None:
    """The same event, inserted at once without the ORM (the visa, on every request)."""
    row = _row(
        action=action,
        user_id=user_id,
        position_id=position_id,
        actor_role=actor_role,
        document_id=document_id,
        object_type=object_type,
        object_id=object_id,
        details=details,
        at=at,
    )
    await insert_row(session, AuditEvent, row)
