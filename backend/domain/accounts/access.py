"""Who may act for which position: the one place that answers object-level authorisation
for cabinets (OWASP API1)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.models import CabinetAccess, Organization, Position, PositionHolder, User
from backend.errors import Forbidden

OWN_RIGHTS = ("read", "decide", "sign", "prepare_resolutions")
ACTING_RIGHTS = ("read", "decide", "sign")


@dataclass(frozen=True)
class Cabinet:
    position_id: uuid.UUID
    title: str
    organization: str
    role: str  # own | assistant | acting
    rights: tuple[str, ...]
    # The position may read "ДСП" documents (for an assistant: the assistant's own clearance).
    dsp_cleared: bool


@dataclass(frozen=True)
class UserRef:
    """Who the user is, as plain values: safe to keep beyond the session that loaded it."""

    id: uuid.UUID
    login: str
    full_name: str

    @classmethod
    def of(cls, user: User) -> UserRef:
        return cls(user.id, user.login, user.full_name)


@dataclass(frozen=True)
class Principal:
    user: UserRef
    session_id: uuid.UUID
    cabinets: tuple[Cabinet, ...]

    def cabinet(self, position_id: uuid.UUID, right: str = "read") -> Cabinet:
        """The user's cabinet for this position with `right`, or 403."""
        for cab in self.cabinets:
            if cab.position_id == position_id and right in cab.rights:
                return cab
        if any(cab.position_id == position_id for cab in self.cabinets):
            raise Forbidden(f"no right '{right}' in this cabinet")
        raise Forbidden("you may not act for this position")

    @property
    def readable_positions(self) -> list[uuid.UUID]:
        return [c.position_id for c in self.cabinets if "read" in c.rights]

    @property
    def dsp_positions(self) -> list[uuid.UUID]:
        return [c.position_id for c in self.cabinets if "read" in c.rights and c.dsp_cleared]


async def load_cabinets(
    session: AsyncSession, user_id: uuid.UUID, now: dt.datetime
) -> tuple[Cabinet, ...]:
    own = (
        await session.execute(
            select(Position, Organization.short_name)
            .join(PositionHolder, PositionHolder.position_id == Position.id)
            .join(Organization, Organization.id == Position.organization_id)
            .where(PositionHolder.user_id == user_id)
            .order_by(Position.title)
        )
    ).all()
    own_cleared = any(p.dsp_cleared for p, _ in own)
    cabinets = [Cabinet(p.id, p.title, org, "own", OWN_RIGHTS, p.dsp_cleared) for p, org in own]
    granted = (
        await session.execute(
            select(CabinetAccess, Position, Organization.short_name)
            .join(Position, Position.id == CabinetAccess.position_id)
            .join(Organization, Organization.id == Position.organization_id)
            .where(
                CabinetAccess.user_id == user_id,
                or_(CabinetAccess.valid_from.is_(None), CabinetAccess.valid_from <= now),
                or_(CabinetAccess.valid_to.is_(None), CabinetAccess.valid_to > now),
            )
            .order_by(Position.title)
        )
    ).all()
    for access, pos, org in granted:
        if access.role == "acting":
            cabinets.append(
                Cabinet(pos.id, pos.title, org, "acting", ACTING_RIGHTS, pos.dsp_cleared)
            )
        else:
            rights = tuple(dict.fromkeys(("read", *access.rights)))
            cabinets.append(
                Cabinet(
                    pos.id, pos.title, org, "assistant", rights, own_cleared and pos.dsp_cleared
                )
            )
    return tuple(cabinets)
