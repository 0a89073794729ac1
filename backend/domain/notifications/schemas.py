"""msgspec structs for push subscriptions and notification settings."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import msgspec


class SubscriptionKeys(msgspec.Struct, forbid_unknown_fields=True):
    p256dh: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    auth: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class SubscriptionIn(msgspec.Struct, forbid_unknown_fields=True):
    """What the browser's PushSubscription.toJSON() gives, plus an optional device name."""

    endpoint: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    keys: SubscriptionKeys
    device_name: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    expirationTime: int | None = None


class SubscriptionOut(msgspec.Struct):
    id: uuid.UUID


class VapidKeyOut(msgspec.Struct):
    public_key: str


class NotificationSettingsIO(msgspec.Struct, forbid_unknown_fields=True):
    disabled_kinds: list[str] = []
    quiet_from: dt.time | None = None
    quiet_to: dt.time | None = None
