"""Push subscriptions per user and device, and per-user notification settings."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.ids import new_id
from backend.db.models import NotificationSettings, PushSubscription
from backend.domain.notifications.kinds import SETTINGS
from backend.domain.notifications.schemas import NotificationSettingsIO, SubscriptionIn
from backend.errors import Invalid, NotFound
from push import (
    EndpointNotAllowedError,
    EndpointPolicy,
    InvalidSubscriptionKeysError,
    validate_subscription_keys,
)


def _endpoint_hash(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()


async def subscribe(
    session: AsyncSession,
    policy: EndpointPolicy,
    user_id: uuid.UUID,
    data: SubscriptionIn,
    now: dt.datetime,
) -> PushSubscription:
    """Register (or take over) a browser subscription. The endpoint is an address the
    server will POST to, so only known push services are accepted (SSRF)."""
    try:
        endpoint = policy.check(data.endpoint)
    except EndpointNotAllowedError as exc:
        raise Invalid(str(exc), field="endpoint") from exc
    try:
        validate_subscription_keys(data.keys.p256dh, data.keys.auth)
    except InvalidSubscriptionKeysError as exc:
        raise Invalid(str(exc), field="keys") from exc
    key = _endpoint_hash(endpoint)
    existing = await session.scalar(
        select(PushSubscription).where(PushSubscription.endpoint_hash == key)
    )
    if existing is not None:
        # One endpoint is one browser profile: a new login on it takes the subscription over.
        existing.user_id = user_id
        existing.p256dh = data.keys.p256dh
        existing.auth = data.keys.auth
        existing.device_name = data.device_name
        sub = existing
    else:
        sub = PushSubscription(
            id=new_id(),
            user_id=user_id,
            endpoint=endpoint,
            endpoint_hash=key,
            p256dh=data.keys.p256dh,
            auth=data.keys.auth,
            device_name=data.device_name,
            created_at=now,
        )
        session.add(sub)
    await session.commit()
    return sub


async def unsubscribe(session: AsyncSession, user_id: uuid.UUID, sub_id: uuid.UUID) -> None:
    result = await session.execute(
        delete(PushSubscription).where(
            PushSubscription.id == sub_id, PushSubscription.user_id == user_id
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound("subscription not found")
    await session.commit()


async def get_settings(session: AsyncSession, user_id: uuid.UUID) -> NotificationSettingsIO:
    row = await session.get(NotificationSettings, user_id)
    if row is None:
        return NotificationSettingsIO()
    return NotificationSettingsIO(list(row.disabled_kinds or []), row.quiet_from, row.quiet_to)


async def put_settings(
    session: AsyncSession, user_id: uuid.UUID, data: NotificationSettingsIO
) -> NotificationSettingsIO:
    unknown = sorted(set(data.disabled_kinds) - set(SETTINGS))
    if unknown:
        raise Invalid(
            f"unknown kinds: {', '.join(unknown)}; known: {', '.join(SETTINGS)}",
            field="disabled_kinds",
        )
    if (data.quiet_from is None) != (data.quiet_to is None):
        raise Invalid("give both quiet_from and quiet_to, or neither", field="quiet_from")
    row = await session.get(NotificationSettings, user_id)
    if row is None:
        row = NotificationSettings(user_id=user_id)
        session.add(row)
    row.disabled_kinds = sorted(set(data.disabled_kinds))
    row.quiet_from = data.quiet_from
    row.quiet_to = data.quiet_to
    await session.commit()
    return await get_settings(session, user_id)
