"""Push: the VAPID key for the browser, subscriptions, notification settings."""

from __future__ import annotations

import uuid

from litestar import Controller, delete, get, post, put
from sqlalchemy.ext.asyncio import AsyncSession

from backend.clock import utcnow
from backend.domain.accounts.access import Principal
from backend.domain.notifications import services
from backend.domain.notifications.schemas import (
    NotificationSettingsIO,
    SubscriptionIn,
    SubscriptionOut,
    VapidKeyOut,
)
from backend.web.deps import Services


class PushController(Controller):
    path = "/api/v1/push"
    tags = ["push"]

    @get("/vapid-public-key", operation_id="vapidPublicKey")
    async def vapid_public_key(self, svc: Services) -> VapidKeyOut:
        """The application server key for PushManager.subscribe (base64url, uncompressed)."""
        return VapidKeyOut(svc.push.keys.public_key_b64)

    @post("/subscriptions", operation_id="subscribe", status_code=201)
    async def subscribe(
        self, data: SubscriptionIn, principal: Principal, db: AsyncSession, svc: Services
    ) -> SubscriptionOut:
        """Register this device's subscription; only known push services are accepted."""
        sub = await services.subscribe(db, svc.push.policy, principal.user.id, data, utcnow())
        return SubscriptionOut(sub.id)

    @delete("/subscriptions/{subscription_id:uuid}", operation_id="unsubscribe", status_code=204)
    async def unsubscribe(
        self, subscription_id: uuid.UUID, principal: Principal, db: AsyncSession
    ) -> None:
        """Remove one of the user's own subscriptions."""
        await services.unsubscribe(db, principal.user.id, subscription_id)

    @get("/settings", operation_id="notificationSettings")
    async def settings(self, principal: Principal, db: AsyncSession) -> NotificationSettingsIO:
        """Which kinds are switched off, and quiet hours (region time)."""
        return await services.get_settings(db, principal.user.id)

    @put("/settings", operation_id="updateNotificationSettings")
    async def update_settings(
        self, data: NotificationSettingsIO, principal: Principal, db: AsyncSession
    ) -> NotificationSettingsIO:
        """Replace the user's notification settings."""
        return await services.put_settings(db, principal.user.id, data)
