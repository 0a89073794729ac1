"""Cabinet change marks: what lets folder counts be cached and still never be stale.

Whatever opens, closes or re-flags a position's cabinet items notes the cabinet: ORM
writes of items through the mapper events below, other statements by calling `touch`
(fastread inserts and bulk UPDATEs in routes/items.py, mark_read, an assignment's
control action). Before its commit the transaction adds one to each touched cabinet's
mark (to one of its slots, at random), in key order: two transactions touching the same
cabinets lock their mark rows in the same order, so they queue instead of deadlocking,
and a mark row is held only for the commit itself. A rolled-back transaction writes
nothing; what it noted stays in the session and bumps at its next commit, which costs a
cache miss at most.

The reader (cabinet/services.py) reads the mark first and the counts after it, so a
cached count is never older than the mark it is stored with.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Insert, SmallInteger, bindparam, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, object_session
from sqlalchemy.types import Uuid

from backend.db.fastread import Write, run_writes
from backend.db.models import CabinetItem, CabinetMark

_TOUCHED = "kabinet.touched_cabinets"


def touch(session: Any, position_ids: Iterable[uuid.UUID]) -> None:
    """Note cabinets whose items this transaction changed (an AsyncSession or a Session)."""
    session.info.setdefault(_TOUCHED, set()).update(position_ids)


@event.listens_for(CabinetItem, "after_insert")
@event.listens_for(CabinetItem, "after_update")
@event.listens_for(CabinetItem, "after_delete")
def _item_flushed(mapper: Any, connection: Any, item: CabinetItem) -> None:
    # Items written as ORM objects are noted here, wherever they are made; statements
    # the ORM does not track (bulk UPDATEs, fastread) call `touch` themselves.
    session = object_session(item)
    if session is not None:
        touch(session, (item.position_id,))


SLOTS = 8


def _slot() -> int:
    # Which slot does not matter to readers (they sum them); spreading the bumps is what
    # keeps decisions on one busy cabinet from queuing on a single row's lock.
    return random.randrange(SLOTS)


@lru_cache(maxsize=2)
def _bump_statement(dialect: str) -> Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(CabinetMark)
        .values(
            position_id=bindparam("position_id", type_=Uuid()),
            slot=bindparam("slot", type_=SmallInteger()),
            version=1,
        )
        .on_conflict_do_update(
            index_elements=[CabinetMark.position_id, CabinetMark.slot],
            set_={"version": CabinetMark.version + 1},
        )
        .returning(CabinetMark.version)
    )


def _bumps(session: Session) -> list[tuple[Insert, dict[str, Any]]]:
    """The bumps for what the session touched, in key order, emptying the set (a second
    call finds nothing). Flush first, so that pending items have noted their cabinets."""
    touched: set[uuid.UUID] = session.info.pop(_TOUCHED, None) or set()
    return [
        (_bump_statement(session.get_bind().dialect.name), {"position_id": p, "slot": _slot()})
        for p in sorted(touched)
    ]


async def write_marks(session: AsyncSession, also: Sequence[Write] = ()) -> None:
    """Bump the touched cabinets' marks now, through fastread: for a decision's request,
    just before its commit (web/idempotency.py); the commit hook then finds nothing.

    `also` (the decision's idempotency record) goes in the same round trip as the bump
    when a single cabinet is touched, as for most decisions. Within one statement
    PostgreSQL runs the parts in an order of its own, but the same for every statement
    of this one shape, so two decisions with the same key take the key and the mark row
    in the same order and cannot deadlock on them. More bumps go one by one after
    `also`, in key order: in one statement their order would depend on the set."""
    if session.new or session.dirty or session.deleted:
        await session.flush()
    bumps = [Write(stmt, params) for stmt, params in _bumps(session.sync_session)]
    if len(bumps) <= 1:
        await run_writes(session, (*also, *bumps))
        return
    await run_writes(session, also)
    for bump in bumps:
        await run_writes(session, (bump,))


@event.listens_for(Session, "before_commit")
def _bump(session: Session) -> None:
    """Every other commit (jobs, other controllers) bumps here, on the ORM."""
    if session.in_nested_transaction():
        return  # a savepoint: the outer commit bumps, or its rollback undoes the items too
    session.flush()
    for stmt, params in _bumps(session):
        session.execute(stmt, params)
