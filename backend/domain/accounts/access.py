"""Who may act for which position: the one place that answers object-level authorisation
for cabinets (OWASP API1)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from backend.db.fastread import fetch_together
from backend.db.models import (
    CabinetAccess,
    Organization,
    Position,
    PositionHolder,
    User,
    UtcDateTime,
)
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


# Built once and run through fastread: every request of a user the principal cache has
# not seen (or has forgotten) runs these.
_USER = bindparam("user_id", type_=Uuid())
_OWN = (
    select(Position.id, Position.title, Organization.short_name, Position.dsp_cleared)
    .join(PositionHolder, PositionHolder.position_id == Position.id)
    .join(Organization, Organization.id == Position.organization_id)
    .where(PositionHolder.user_id == _USER)
    .order_by(Position.title)
)
_NOW = bindparam("now", type_=UtcDateTime())
_GRANTED = (
    select(
        CabinetAccess.role,
        CabinetAccess.rights,
        Position.id,
        Position.title,
        Organization.short_name,
        Position.dsp_cleared,
    )
    .join(Position, Position.id == CabinetAccess.position_id)
    .join(Organization, Organization.id == Position.organization_id)
    .where(
        CabinetAccess.user_id == _USER,
        or_(CabinetAccess.valid_from.is_(None), CabinetAccess.valid_from <= _NOW),
        or_(CabinetAccess.valid_to.is_(None), CabinetAccess.valid_to > _NOW),
    )
    .order_by(Position.title)
)


_ACTIVE_USER = select(User.id, User.login, User.full_name).where(
    User.id == _USER, User.is_active.is_(True)
)
_PRINCIPAL = (_ACTIVE_USER, _OWN, _GRANTED)


async def load_principal(
    session: AsyncSession, user_id: uuid.UUID, now: dt.datetime
) -> tuple[UserRef, tuple[Cabinet, ...]] | None:
    """The active user and their cabinets, in one round trip (fetch_together); None when
    the user does not exist or is deactivated."""
    user, own, granted = await fetch_together(session, _PRINCIPAL, {"user_id": user_id, "now": now})
    if not user:
        return None
    return UserRef(*user[0]), _cabinets(own, granted)


def _cabinets(
    own: Sequence[Sequence[Any]], granted: Sequence[Sequence[Any]]
) -> tuple[Cabinet, ...]:
    own_cleared = any(cleared for *_, cleared in own)
    cabinets = [
        Cabinet(pid, title, org, "own", OWN_RIGHTS, cleared) for pid, title, org, cleared in own
    ]
    for role, granted_rights, pid, title, org, cleared in granted:
        if role == "acting":
            cabinets.append(Cabinet(pid, title, org, "acting", ACTING_RIGHTS, cleared))
        else:
            rights = tuple(dict.fromkeys(("read", *granted_rights)))
            cabinets.append(Cabinet(pid, title, org, "assistant", rights, own_cleared and cleared))
    return tuple(cabinets)
