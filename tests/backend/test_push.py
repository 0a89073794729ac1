"""Web Push: subscriptions (SSRF-safe), delivery of every event kind through a real
loopback push service that decrypts each message and checks VAPID, retries, pruning,
settings, and no double delivery with two worker processes on PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from backend.db.models import PushDelivery, PushSubscription, User
from backend.domain.notifications.kinds import KINDS
from backend.domain.notifications.outbox import emit
from backend.jobs.push_worker import make_sender, push_round
from push import Subscription
from tests.backend import workflow
from tests.backend.conftest import Env

ROOT = Path(__file__).resolve().parents[2]


async def subscribe(
    env: Env, login: str, sub: Subscription | None = None
) -> tuple[Subscription, str]:
    sub = sub or env.push_service.new_subscription()
    r = await env.client.post(
        "/api/v1/push/subscriptions",
        json={
            "endpoint": sub.endpoint,
            "keys": {"p256dh": sub.p256dh, "auth": sub.auth},
            "device_name": "iPad",
        },
        headers=await env.login(login),
    )
    assert r.status_code == 201, r.text
    return sub, r.json()["id"]


async def run_rounds(env: Env, now: dt.datetime | None = None) -> None:
    """Run the worker until it finds nothing to do (as `kabinet serve` would)."""
    services = env.app.state.services
    async with make_sender(services, trust_env=False) as sender:
        for _ in range(20):
            if not await push_round(services, sender, now or dt.datetime.now(dt.UTC)):
                return
    raise AssertionError("worker did not settle")


async def a_document(env: Env, login: str = "governor") -> str:
    pid = await env.own_position(login)
    q = await env.client.get(
        f"/api/v1/cabinets/{pid}/queue",
        params={"folder": "resolve", "limit": 1},
        headers=await env.login(login),
    )
    return str(q.json()["items"][0]["document_id"])


async def test_vapid_public_key_is_the_servers(env: Env) -> None:
    r = await env.client.get("/api/v1/push/vapid-public-key", headers=await env.login("governor"))
    assert r.status_code == 200
    assert r.json()["public_key"] == env.app.state.services.push.keys.public_key_b64


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://evil.example.com/push/1",
        "http://fcm.googleapis.com/fcm/send/x",
        "https://169.254.169.254/latest/meta-data",
        "https://127.0.0.1/push/1",
        "http://127.0.0.1:9/push/1",
        "https://user:pw@fcm.googleapis.com/fcm/send/x",
        "https://fcm.googleapis.com.evil.com/fcm/send/x",
        "file:///etc/passwd",
        "not a url",
    ],
)
async def test_subscriptions_to_unknown_endpoints_are_refused(env: Env, endpoint: str) -> None:
    good = env.push_service.new_subscription()
    before = await env.count("push_subscriptions")
    r = await env.client.post(
        "/api/v1/push/subscriptions",
        json={"endpoint": endpoint, "keys": {"p256dh": good.p256dh, "auth": good.auth}},
        headers=await env.login("governor"),
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "endpoint"
    assert await env.count("push_subscriptions") == before


async def test_known_push_service_and_bad_keys(env: Env) -> None:
    good = env.push_service.new_subscription()
    headers = await env.login("governor")
    fcm = f"https://fcm.googleapis.com/fcm/send/{uuid.uuid4().hex}"
    ok = await env.client.post(
        "/api/v1/push/subscriptions",
        json={"endpoint": fcm, "keys": {"p256dh": good.p256dh, "auth": good.auth}},
        headers=headers,
    )
    assert ok.status_code == 201
    bad = await env.client.post(
        "/api/v1/push/subscriptions",
        json={"endpoint": fcm + "x", "keys": {"p256dh": "AAAA", "auth": good.auth}},
        headers=headers,
    )
    assert bad.status_code == 422
    # Only the owner removes a subscription; others get 404.
    sub_id = ok.json()["id"]
    other = await env.client.delete(
        f"/api/v1/push/subscriptions/{sub_id}", headers=await env.login("executor")
    )
    assert other.status_code == 404
    mine = await env.client.delete(f"/api/v1/push/subscriptions/{sub_id}", headers=headers)
    assert mine.status_code == 204


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_every_kind_is_delivered_decrypted_and_in_russian(env: Env, kind: str) -> None:
    sub, _ = await subscribe(env, "minister.finance")
    doc_id = await a_document(env, "minister.finance")
    pid = await env.own_position("minister.finance")
    async with env.app.state.services.sessions() as session:
        emit(
            session,
            kind,
            dt.datetime.now(dt.UTC),
            document_id=doc_id,
            positions=[pid],
            folder="resolve",
        )
        await session.commit()
    await run_rounds(env)
    got = [
        m for m in env.push_service.messages_for(sub) if m.notification().tag == f"{kind}:{doc_id}"
    ]
    assert len(got) == 1
    note = got[0].notification()
    assert note.title == KINDS[kind].title
    assert note.url.startswith(f"/#/d/{doc_id}")
    assert note.document_id == doc_id
    assert got[0].vapid_claims["aud"] == env.push_service.origin
    assert got[0].urgency == KINDS[kind].urgency.value


async def test_a_real_decision_notifies_the_next_approver(env: Env) -> None:
    sub, _ = await subscribe(env, "lawyer")
    doc = await workflow.create_draft(env, author="minister.digital")
    await workflow.route_draft(env, doc, [["lawyer"]], ["governor"], author="minister.digital")
    await run_rounds(env)
    got = [m.notification() for m in env.push_service.messages_for(sub)]
    assert any(n.title == "Проект на визу" and n.document_id == doc["id"] for n in got), got


async def test_an_event_naming_a_user_reaches_that_user_once(env: Env) -> None:
    # As a draft resolution returned to an assistant without a position of their own
    # is announced: `users`, no `positions`. And a user named and reached through a
    # position too gets one message, not two.
    sub, _ = await subscribe(env, "minister.finance")
    me = await env.cabinets("minister.finance")
    doc_id = await a_document(env, "minister.finance")
    async with env.app.state.services.sessions() as session:
        now = dt.datetime.now(dt.UTC)
        emit(
            session,
            "resolution.returned",
            now,
            document_id=doc_id,
            positions=[],
            users=[me["user"]["id"]],
            folder="drafts",
        )
        emit(
            session,
            "assignment.given",
            now,
            document_id=doc_id,
            positions=[await env.own_position("minister.finance")],
            users=[me["user"]["id"]],
        )
        await session.commit()
    await run_rounds(env)
    tags = sorted(m.notification().tag for m in env.push_service.messages_for(sub))
    assert tags == [f"assignment.given:{doc_id}", f"resolution.returned:{doc_id}"]


async def test_named_users_are_skipped_when_inactive_or_malformed(env: Env) -> None:
    sub, _ = await subscribe(env, "first.deputy")
    user_id = uuid.UUID((await env.cabinets("first.deputy"))["user"]["id"])
    doc_id = await a_document(env, "first.deputy")
    async with env.app.state.services.sessions() as session:
        await session.execute(update(User).where(User.id == user_id).values(is_active=False))
        now = dt.datetime.now(dt.UTC)
        emit(session, "resolution.returned", now, document_id=doc_id, users=[str(user_id)])
        await session.commit()
    await run_rounds(env)
    assert env.push_service.messages_for(sub) == []  # a deactivated user gets nothing
    async with env.app.state.services.sessions() as session:
        await session.execute(update(User).where(User.id == user_id).values(is_active=True))
        emit(
            session,
            "resolution.cancelled",
            dt.datetime.now(dt.UTC),
            document_id=doc_id,
            users=["not-a-uuid", str(user_id)],
        )
        await session.commit()
    await run_rounds(env)  # a malformed id neither stops the batch nor the good one
    tags = [m.notification().tag for m in env.push_service.messages_for(sub)]
    assert tags == [f"resolution.cancelled:{doc_id}"]


async def _delivery(env: Env, sub_id: str) -> PushDelivery:
    async with env.app.state.services.sessions() as session:
        row = await session.scalar(
            select(PushDelivery)
            .where(PushDelivery.subscription_id == uuid.UUID(sub_id))
            .order_by(PushDelivery.created_at.desc())
            .limit(1)
        )
        assert row is not None
        return row


async def _emit_for(
    env: Env, login: str, kind: str = "assignment.given", doc_from: str | None = None
) -> str:
    doc_id = await a_document(env, doc_from or login)
    async with env.app.state.services.sessions() as session:
        emit(
            session,
            kind,
            dt.datetime.now(dt.UTC),
            document_id=doc_id,
            positions=[await env.own_position(login)],
        )
        await session.commit()
    return doc_id


async def test_retry_after_503_honours_retry_after_then_delivers(env: Env) -> None:
    sub, sub_id = await subscribe(env, "first.deputy")
    env.push_service.fail_next(1, 503, retry_after=120, subscription=sub)
    await _emit_for(env, "first.deputy")
    now = dt.datetime.now(dt.UTC)
    await run_rounds(env, now)
    first = await _delivery(env, sub_id)
    assert first.status == "pending" and first.last_http_status == 503
    assert first.next_attempt_at >= now + dt.timedelta(seconds=120)
    assert env.push_service.messages_for(sub) == []
    await run_rounds(env, now + dt.timedelta(seconds=60))  # still waiting
    assert env.push_service.messages_for(sub) == []
    await run_rounds(env, first.next_attempt_at + dt.timedelta(seconds=1))
    done = await _delivery(env, sub_id)
    assert done.status == "delivered" and done.attempts == 2
    assert len(env.push_service.messages_for(sub)) == 1


async def test_gone_subscription_is_pruned(env: Env) -> None:
    sub, sub_id = await subscribe(env, "first.deputy")
    env.push_service.expire(sub)
    await _emit_for(env, "first.deputy")
    await run_rounds(env)
    async with env.app.state.services.sessions() as session:
        assert await session.get(PushSubscription, uuid.UUID(sub_id)) is None
        statuses = set(
            await session.scalars(
                select(PushDelivery.status).where(
                    PushDelivery.subscription_id.is_(None), PushDelivery.last_http_status == 410
                )
            )
        )
    assert statuses == {"gone"}


async def test_settings_switch_kinds_off_and_hold_quiet_hours(env: Env) -> None:
    sub, _ = await subscribe(env, "minister.digital")
    headers = await env.login("minister.digital")
    bad = await env.client.put(
        "/api/v1/push/settings", json={"disabled_kinds": ["spam"]}, headers=headers
    )
    assert bad.status_code == 422
    r = await env.client.put(
        "/api/v1/push/settings", json={"disabled_kinds": ["execute"]}, headers=headers
    )
    assert r.status_code == 200 and r.json()["disabled_kinds"] == ["execute"]
    doc_id = await _emit_for(env, "minister.digital", "assignment.given")
    await run_rounds(env)
    assert not [
        m
        for m in env.push_service.messages_for(sub)
        if m.notification().tag == f"assignment.given:{doc_id}"
    ]
    # Quiet all day long but one minute: the push waits for the end of the quiet hours.
    local = dt.datetime.now(dt.UTC).astimezone(
        __import__("zoneinfo").ZoneInfo(env.settings.timezone)
    )
    start = (local - dt.timedelta(minutes=5)).time().replace(second=0, microsecond=0)
    end = (local + dt.timedelta(minutes=30)).time().replace(second=0, microsecond=0)
    r = await env.client.put(
        "/api/v1/push/settings",
        json={"disabled_kinds": [], "quiet_from": start.isoformat(), "quiet_to": end.isoformat()},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    doc_id = await _emit_for(env, "minister.digital", "sign.requested")
    await run_rounds(env)
    tag = f"sign.requested:{doc_id}"
    assert not [m for m in env.push_service.messages_for(sub) if m.notification().tag == tag]
    await run_rounds(env, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=40))
    assert [m for m in env.push_service.messages_for(sub) if m.notification().tag == tag]
    await env.client.put("/api/v1/push/settings", json={}, headers=headers)


WORKER = """
import asyncio, dataclasses, datetime as dt, os, sys, time
from backend.app import build_services
from backend.domain.notifications.delivery import deliver_due
from backend.domain.notifications.fanout import fan_out
from backend.jobs.push_worker import make_sender
from backend.settings import load_settings

async def main():
    settings = dataclasses.replace(load_settings(), push_allowlist=(sys.argv[1],))
    services = build_services(settings)
    print("ready", flush=True)
    while not os.path.exists(sys.argv[2]):  # start together
        time.sleep(0.01)
    idle = sent = 0
    async with make_sender(services, trust_env=False) as sender:
        while idle < 5:
            now = dt.datetime.now(dt.UTC)
            async with services.sessions() as session:
                did = await fan_out(session, now, settings.timezone)
            n = await deliver_due(services.sessions, sender, now, limit=20)
            sent += n
            idle = 0 if did or n else idle + 1
            if not (did or n):
                await asyncio.sleep(0.1)
    await services.engine.dispose()
    print(f"sent {sent}", flush=True)

asyncio.run(main())
"""


async def test_two_worker_processes_never_deliver_twice(env: Env) -> None:
    if env.name != "pg":
        pytest.skip("SKIP LOCKED across processes is a PostgreSQL property")
    await run_rounds(env)  # drain what other tests left
    subs = [env.push_service.new_subscription() for _ in range(150)]
    for s in subs:
        await subscribe(env, "executor", s)
    events = []
    for _ in range(4):
        events.append(await _emit_for(env, "executor", "assignment.given", doc_from="governor"))
    environ = {
        **os.environ,
        "KABINET_DATABASE_URL": env.settings.database_url,
        "KABINET_DATA_DIR": str(env.settings.data_dir),
        "KABINET_LOG_FORMAT": "console",
    }
    go = env.settings.data_dir / f"go-{uuid.uuid4().hex}"
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            env.push_service.origin,
            str(go),
            cwd=ROOT,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for p in procs:
        assert p.stdout is not None
        assert (await p.stdout.readline()).strip() == b"ready"
    go.touch()
    outputs = [await p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1].decode()[-2000:] for o in outputs]
    shares = [int(o[0].decode().split()[-1]) for o in outputs]
    assert sum(shares) == len(subs) * len(events)
    assert all(shares), shares  # both processes really took part
    for s in subs:
        tags = [m.notification().tag for m in env.push_service.messages_for(s)]
        assert sorted(tags) == sorted(f"assignment.given:{d}" for d in events)
    async with env.app.state.services.sessions() as session:
        pending = await session.scalar(
            select(func.count()).select_from(PushDelivery).where(PushDelivery.status == "pending")
        )
    assert pending == 0
    for s in subs:  # leave no noise for other tests
        env.push_service.expire(s)
    await run_rounds(env)


async def test_worker_in_the_same_process_wakes_on_commit(env: Env) -> None:
    """With a 60 s poll interval, only the commit wake-up can deliver within the wait."""
    import dataclasses

    from backend.jobs.push_worker import run_push_worker

    sub, _ = await subscribe(env, "minister.finance")
    await run_rounds(env)
    services = dataclasses.replace(
        env.app.state.services,
        settings=dataclasses.replace(env.settings, push_poll_seconds=60.0),
    )
    stop = asyncio.Event()
    worker = asyncio.create_task(run_push_worker(services, stop))
    await asyncio.sleep(0.5)  # let it find nothing and go to sleep
    doc_id = await _emit_for(env, "minister.finance", "sign.requested")
    tag = f"sign.requested:{doc_id}"
    for _ in range(100):
        if [m for m in env.push_service.messages_for(sub) if m.notification().tag == tag]:
            break
        await asyncio.sleep(0.1)
    stop.set()
    await worker
    assert [m for m in env.push_service.messages_for(sub) if m.notification().tag == tag]
