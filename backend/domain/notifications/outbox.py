"""The transactional outbox: events written in the decision's transaction; the push worker
(a later issue) delivers them. Payloads carry ids only, never document text."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.ids import new_id
from backend.db.models import OutboxEvent


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def emit(session: AsyncSession, kind: str, at: dt.datetime, **payload: Any) -> OutboxEvent:
    event = OutboxEvent(
        id=new_id(), kind=kind, payload=_plain(payload), created_at=at, available_at=at
    )
    session.add(event)
    return event
