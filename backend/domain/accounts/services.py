"""Login, refresh-token rotation with reuse detection, logout, login throttling."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import anyio
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.ids import new_id
from backend.db.models import LoginFailure, RefreshToken, User
from backend.domain.accounts.passwords import verify_password
from backend.domain.accounts.tokens import TokenCodec, hash_refresh_token, new_refresh_token
from backend.domain.audit.services import record
from backend.errors import TooManyRequests, Unauthorized
from backend.settings import Settings

# At most two password hashes at once per process: the machine has two cores.
_HASHING = anyio.CapacityLimiter(2)


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


async def _issue_pair(
    session: AsyncSession,
    codec: TokenCodec,
    settings: Settings,
    user_id: uuid.UUID,
    family_id: uuid.UUID,
    device_name: str | None,
    now: dt.datetime,
) -> TokenPair:
    refresh = new_refresh_token()
    session.add(
        RefreshToken(
            id=new_id(),
            family_id=family_id,
            user_id=user_id,
            token_hash=hash_refresh_token(refresh),
            device_name=device_name,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=settings.refresh_ttl_seconds),
        )
    )
    return TokenPair(codec.issue(user_id, family_id, now), refresh, codec.ttl_seconds)


async def login(
    session: AsyncSession,
    codec: TokenCodec,
    settings: Settings,
    login_name: str,
    password: str,
    device_name: str | None,
    now: dt.datetime,
) -> TokenPair:
    # Lower-casing can lengthen a string ("İ" → "i̇"); keep the key within the column.
    login_key = login_name.strip().lower()[:100]
    window_start = now - dt.timedelta(seconds=settings.login_window_seconds)
    # The attempt is recorded (and committed) before the password is checked, so parallel
    # attempts see each other and cannot each get a guess past the limit; a successful
    # login removes the rows again.
    session.add(LoginFailure(login=login_key, at=now))
    await session.commit()
    attempts = await session.scalar(
        select(func.count())
        .select_from(LoginFailure)
        .where(LoginFailure.login == login_key, LoginFailure.at > window_start)
    )
    if (attempts or 0) > settings.login_max_failures:
        raise TooManyRequests(
            "too many failed logins; try again later",
            retry_after=settings.login_window_seconds,
        )
    user = await session.scalar(select(User).where(User.login == login_key))
    # argon2 takes ~0.1 s of CPU by design: off the event loop, or every login would stall
    # every other request of this process.
    ok = await anyio.to_thread.run_sync(
        verify_password, user.password_hash if user else None, password, limiter=_HASHING
    )
    if user is None or not ok or not user.is_active:
        raise Unauthorized("wrong login or password")
    await session.execute(delete(LoginFailure).where(LoginFailure.login == login_key))
    pair = await _issue_pair(session, codec, settings, user.id, new_id(), device_name, now)
    record(session, action="auth.login", user_id=user.id, details={"device": device_name}, at=now)
    await session.commit()
    return pair


async def refresh(
    session: AsyncSession, codec: TokenCodec, settings: Settings, token: str, now: dt.datetime
) -> TokenPair:
    row = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(token))
    )
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise Unauthorized("invalid refresh token")
    # Mark used with a conditional UPDATE: of two concurrent refreshes one wins, and the
    # loser is treated as reuse.
    claimed = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == row.family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        record(
            session,
            action="auth.refresh_reuse",
            user_id=row.user_id,
            details={"family_id": str(row.family_id)},
            at=now,
        )
        await session.commit()
        raise Unauthorized("refresh token reused; the session has been revoked")
    pair = await _issue_pair(
        session, codec, settings, row.user_id, row.family_id, row.device_name, now
    )
    await session.commit()
    return pair


async def logout(session: AsyncSession, family_id: uuid.UUID, now: dt.datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await session.commit()
