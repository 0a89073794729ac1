"""Delivering push rows: claim due ones under a lease, send them concurrently, record the
outcome. Two workers on one PostgreSQL never take the same row: the claim is an UPDATE
over `FOR UPDATE SKIP LOCKED` that pushes `next_attempt_at` past the lease, committed
before anything is sent. A worker killed mid-send leaves its rows to be retried when the
lease ends (at-least-once, the normal contract of Web Push)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import msgspec
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.models import PushDelivery, PushSubscription
from push import DeliveryResult, DeliveryStatus, PushSender, Subscription, Urgency, backoff

BATCH = 500
LEASE = dt.timedelta(seconds=60)
MAX_ATTEMPTS = 8

SessionFactory = Callable[[], AbstractAsyncContextManager[AsyncSession]]


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    subscription: Subscription
    subscription_id: uuid.UUID
    body: bytes
    urgency: Urgency
    ttl: int
    topic: str | None
    attempts: int
    expires_at: dt.datetime


async def claim(session: AsyncSession, now: dt.datetime, limit: int = BATCH) -> list[Claimed]:
    due = (
        select(PushDelivery.id)
        .where(
            PushDelivery.status == "pending",
            PushDelivery.next_attempt_at <= now,
            PushDelivery.subscription_id.is_not(None),
        )
        .order_by(PushDelivery.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(await session.scalars(due))
    if not ids:
        await session.commit()
        return []
    await session.execute(
        update(PushDelivery)
        .where(PushDelivery.id.in_(ids))
        .values(next_attempt_at=now + LEASE, attempts=PushDelivery.attempts + 1)
    )
    rows = (
        await session.execute(
            select(PushDelivery, PushSubscription)
            .join(PushSubscription, PushSubscription.id == PushDelivery.subscription_id)
            .where(PushDelivery.id.in_(ids))
        )
    ).all()
    await session.commit()
    return [
        Claimed(
            id=d.id,
            subscription=Subscription(s.endpoint, s.p256dh, s.auth),
            subscription_id=s.id,
            body=msgspec.json.encode(d.payload),
            urgency=Urgency(d.urgency),
            ttl=d.ttl,
            topic=d.topic,
            attempts=d.attempts,
            expires_at=d.created_at + dt.timedelta(seconds=d.ttl),
        )
        for d, s in rows
    ]


async def record(
    session: AsyncSession, item: Claimed, result: DeliveryResult, now: dt.datetime
) -> None:
    """Record a failed, retried or gone delivery (delivered ones go in bulk)."""
    values: dict[str, object] = {"last_http_status": result.http_status}
    status = result.status
    if status is DeliveryStatus.GONE:
        values |= {"status": "gone", "last_error": result.detail or None}
    elif status is DeliveryStatus.RETRY:
        wait = backoff(item.attempts, result.retry_after_seconds)
        retry_at = now + dt.timedelta(seconds=wait)
        if item.attempts >= MAX_ATTEMPTS or retry_at >= item.expires_at:
            values |= {"status": "failed", "last_error": f"gave up: {result.detail}"[:500]}
        else:
            values |= {"next_attempt_at": retry_at, "last_error": result.detail[:500] or None}
    else:
        values |= {"status": "failed", "last_error": result.detail[:500] or None}
    await session.execute(update(PushDelivery).where(PushDelivery.id == item.id).values(**values))
    if status is DeliveryStatus.GONE:
        # The browser unsubscribed or the service expired it: nobody will read it again.
        await session.execute(
            update(PushDelivery)
            .where(
                PushDelivery.subscription_id == item.subscription_id,
                PushDelivery.status == "pending",
            )
            .values(status="gone", last_error="subscription gone")
        )
        await session.execute(
            delete(PushSubscription).where(PushSubscription.id == item.subscription_id)
        )


async def deliver_due(
    sessions: SessionFactory, sender: PushSender, now: dt.datetime, limit: int = BATCH
) -> int:
    """One round: claim, send concurrently, record. Returns how many were attempted."""
    async with sessions() as session:
        batch = await claim(session, now, limit)
    if not batch:
        return 0
    results = await asyncio.gather(
        *(
            sender.send(c.subscription, c.body, ttl=c.ttl, urgency=c.urgency, topic=c.topic)
            for c in batch
        )
    )
    async with sessions() as session:
        await record_all(session, batch, list(results), now)
        await session.commit()
    return len(batch)


async def record_all(
    session: AsyncSession, batch: list[Claimed], results: list[DeliveryResult], now: dt.datetime
) -> None:
    """Record a round's outcomes: the common case (delivered) in two statements for the
    whole batch, the rare ones row by row."""
    delivered: dict[int | None, list[uuid.UUID]] = {}
    for item, result in zip(batch, results, strict=True):
        if result.status is DeliveryStatus.DELIVERED:
            delivered.setdefault(result.http_status, []).append(item.id)
        else:
            await record(session, item, result, now)
    for http_status, ids in delivered.items():
        await session.execute(
            update(PushDelivery)
            .where(PushDelivery.id.in_(ids))
            .values(status="delivered", delivered_at=now, last_http_status=http_status)
        )
    ok = {
        i.subscription_id
        for i, r in zip(batch, results, strict=True)
        if r.status is DeliveryStatus.DELIVERED
    }
    if ok:
        await session.execute(
            update(PushSubscription).where(PushSubscription.id.in_(ok)).values(last_success_at=now)
        )
