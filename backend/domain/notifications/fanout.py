"""Outbox → push deliveries: one row per (event, subscription) of every user who holds or
acts for a notified position. Runs in the worker, never in the request, so a decision
that notifies thousands costs the API nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.ids import new_id
from backend.db.models import (
    CabinetAccess,
    Document,
    NotificationSettings,
    OutboxEvent,
    PositionHolder,
    PushDelivery,
    PushSubscription,
    User,
)
from backend.domain.notifications.kinds import KINDS, Kind, document_url
from push import Notification, make_topic

BATCH = 200
BODY_LIMIT = 180


def _quiet_until(
    settings: NotificationSettings | None, now: dt.datetime, tz: ZoneInfo
) -> dt.datetime | None:
    """The end of the user's quiet hours if `now` falls inside them (region time)."""
    if settings is None or settings.quiet_from is None or settings.quiet_to is None:
        return None
    local = now.astimezone(tz)
    start, end = settings.quiet_from, settings.quiet_to
    t = local.timetz().replace(tzinfo=None)
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    if not inside:
        return None
    end_day = local.date() if t < end else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(end_day, end, tzinfo=tz).astimezone(dt.UTC)


def _notification(kind: str, spec: Kind, event: OutboxEvent, doc: Document | None) -> Notification:
    document_id = str(event.payload.get("document_id") or "")
    folder = spec.folder or event.payload.get("folder")
    if doc is None:
        body = "Откройте Кабинет, чтобы посмотреть"
    elif doc.access_level == "dsp":
        body = "Документ ДСП" + (f" № {doc.reg_number}" if doc.reg_number else "")
    else:
        body = (f"№ {doc.reg_number}. " if doc.reg_number else "") + doc.title
    if len(body) > BODY_LIMIT:
        body = body[: BODY_LIMIT - 1] + "…"
    return Notification(
        title=spec.title,
        body=body,
        url=document_url(document_id, folder) if document_id else "/",
        document_id=document_id or None,
        folder=folder,
        tag=f"{kind}:{document_id}",
    )


def _user_ids(value: object) -> set[uuid.UUID]:
    """The user ids an event names; a malformed one is skipped, not a stuck batch."""
    out = set()
    for item in value if isinstance(value, list) else []:
        try:
            out.add(uuid.UUID(str(item)))
        except ValueError:
            continue
    return out


async def _recipients(
    session: AsyncSession, positions: set[uuid.UUID], now: dt.datetime
) -> dict[uuid.UUID, set[uuid.UUID]]:
    """Position → users who hold it or act for it now."""
    out: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    if not positions:
        return out
    for pid, uid in await session.execute(
        select(PositionHolder.position_id, PositionHolder.user_id).where(
            PositionHolder.position_id.in_(positions)
        )
    ):
        out[pid].add(uid)
    for pid, uid in await session.execute(
        select(CabinetAccess.position_id, CabinetAccess.user_id).where(
            CabinetAccess.position_id.in_(positions),
            CabinetAccess.role == "acting",
            or_(CabinetAccess.valid_from.is_(None), CabinetAccess.valid_from <= now),
            or_(CabinetAccess.valid_to.is_(None), CabinetAccess.valid_to > now),
        )
    ):
        out[pid].add(uid)
    return out


async def fan_out(session: AsyncSession, now: dt.datetime, tz: str) -> int:
    """Turn up to BATCH due outbox events into deliveries; returns events consumed.

    Events are claimed with FOR UPDATE SKIP LOCKED, so several workers on one PostgreSQL
    split them; each event is consumed in the transaction that writes its deliveries.
    """
    events = list(
        await session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.done_at.is_(None), OutboxEvent.available_at <= now)
            .order_by(OutboxEvent.available_at, OutboxEvent.id)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
    )
    if not events:
        return 0
    zone = ZoneInfo(tz)
    wanted = [e for e in events if e.kind in KINDS]
    positions = {uuid.UUID(p) for e in wanted for p in e.payload.get("positions", [])}
    by_position = await _recipients(session, positions, now)
    # Some events name people, not positions (a draft resolution returned to an assistant
    # who holds no position of their own): those users, if still active, are recipients.
    named = {e.id: _user_ids(e.payload.get("users")) for e in wanted}
    if any(named.values()):
        active = set(
            await session.scalars(
                select(User.id).where(
                    User.id.in_(set().union(*named.values())), User.is_active.is_(True)
                )
            )
        )
        named = {eid: ids & active for eid, ids in named.items()}
    users = {u for us in by_position.values() for u in us}.union(*named.values())
    doc_ids = {uuid.UUID(e.payload["document_id"]) for e in wanted if e.payload.get("document_id")}
    docs = (
        {d.id: d for d in await session.scalars(select(Document).where(Document.id.in_(doc_ids)))}
        if doc_ids
        else {}
    )
    subs: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    prefs: dict[uuid.UUID, NotificationSettings] = {}
    if users:
        for sid, uid in await session.execute(
            select(PushSubscription.id, PushSubscription.user_id).where(
                PushSubscription.user_id.in_(users)
            )
        ):
            subs[uid].append(sid)
        prefs = {
            s.user_id: s
            for s in await session.scalars(
                select(NotificationSettings).where(NotificationSettings.user_id.in_(users))
            )
        }
    rows: list[dict[str, Any]] = []
    for event in wanted:
        spec = KINDS[event.kind]
        doc_id = event.payload.get("document_id")
        note = _notification(
            event.kind, spec, event, docs.get(uuid.UUID(doc_id)) if doc_id else None
        )
        payload = {
            f: getattr(note, f) for f in note.__struct_fields__ if getattr(note, f) is not None
        }
        targets = {
            u for p in event.payload.get("positions", []) for u in by_position.get(uuid.UUID(p), ())
        } | named[event.id]
        for uid in targets:
            pref = prefs.get(uid)
            if pref is not None and spec.setting in (pref.disabled_kinds or []):
                continue
            start = _quiet_until(pref, now, zone) or now
            for sid in subs.get(uid, ()):
                rows.append(
                    {
                        "id": new_id(),
                        "event_id": event.id,
                        "subscription_id": sid,
                        "kind": event.kind,
                        "payload": payload,
                        "urgency": spec.urgency.value,
                        "ttl": spec.ttl,
                        "topic": make_topic(note.tag),
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": start,
                        "created_at": now,
                    }
                )
    for i in range(0, len(rows), 5000):
        await session.execute(insert(PushDelivery), rows[i : i + 5000])
    await session.execute(
        update(OutboxEvent).where(OutboxEvent.id.in_([e.id for e in events])).values(done_at=now)
    )
    await session.commit()
    return len(events)
