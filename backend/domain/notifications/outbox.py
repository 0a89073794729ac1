"""The transactional outbox: events written in the decision's transaction; the push worker
delivers them. Payloads carry ids only, never document text.

A worker in the same process is woken the moment such a transaction commits, so a push
leaves within milliseconds instead of at the next poll; workers in other processes still
find the rows by polling.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import replace
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from backend.db.fastread import Write, insert_write, run_writes
from backend.db.ids import new_id
from backend.db.models import OutboxEvent

_DIRTY = "kabinet.outbox_dirty"
# Set after a commit that wrote outbox rows; the push worker waits on it between rounds.
committed = asyncio.Event()


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


def _row(kind: str, at: dt.datetime, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": new_id(),
        "kind": kind,
        "payload": _plain(payload),
        "created_at": at,
        "available_at": at,
        "attempts": 0,
        "done_at": None,
        "last_error": None,
    }


def emit(session: AsyncSession, kind: str, at: dt.datetime, **payload: Any) -> OutboxEvent:
    """Add the event to the session: written with the session's next flush."""
    row = OutboxEvent(**_row(kind, at, payload))
    session.add(row)
    session.info[_DIRTY] = True
    return row


def event_write(session: AsyncSession, kind: str, at: dt.datetime, **payload: Any) -> Write:
    """The same event as a write for `run_writes`: with a decision's other writes in one
    round trip (the visa, on every request). The session's worker is woken once it runs
    and commits."""

    def written(_rows: object) -> None:
        session.info[_DIRTY] = True

    return replace(insert_write(OutboxEvent, _row(kind, at, payload)), then=written)


async def emit_now(session: AsyncSession, kind: str, at: dt.datetime, **payload: Any) -> None:
    """The same event, inserted at once without the ORM."""
    await run_writes(session, (event_write(session, kind, at, **payload),))


@event.listens_for(Session, "after_commit")
def _wake_worker(session: Session) -> None:
    if session.info.pop(_DIRTY, False):
        committed.set()


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_DIRTY, None)
