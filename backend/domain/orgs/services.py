"""The org directory: find positions by title, organisation or holder's name (the executor
picker of a resolution, forwarding). Positions and names are not secret inside the
government, but only signed-in users may search."""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from backend.db.models import Organization, Position, PositionHolder, User
from backend.domain.orgs.schemas import PositionOut
from backend.errors import Invalid


def _lower(session: AsyncSession, column: InstrumentedAttribute[str]) -> ColumnElement[str]:
    # SQLite's lower() folds ASCII only; the engine registers a Unicode one (engine.py).
    dialect = session.bind.dialect.name if session.bind is not None else ""
    return func.kb_lower(column) if dialect == "sqlite" else func.lower(column)


async def search_positions(session: AsyncSession, q: str, limit: int) -> list[PositionOut]:
    words = [w for w in q.lower().split() if w][:5]
    if not words or len(q.strip()) < 2:
        raise Invalid("type at least two letters", field="q")
    if not 1 <= limit <= 50:
        raise Invalid("limit must be between 1 and 50", field="limit")
    haystack = [
        _lower(session, Position.title),
        _lower(session, Organization.short_name),
        _lower(session, Organization.name),
        _lower(session, User.full_name),
    ]
    query = (
        select(Position.id, Position.title, Organization.short_name, User.full_name)
        .join(Organization, Organization.id == Position.organization_id)
        .outerjoin(PositionHolder, PositionHolder.position_id == Position.id)
        .outerjoin(User, User.id == PositionHolder.user_id)
        # Every word must match somewhere: "минфин министр", "петров".
        .where(*(or_(*(h.contains(w, autoescape=True) for h in haystack)) for w in words))
        .order_by(Position.is_executive.desc(), Position.title)
        .limit(limit)
    )
    return [
        PositionOut(pid, title, org, holder)
        for pid, title, org, holder in await session.execute(query)
    ]
