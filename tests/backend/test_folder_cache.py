"""Folder counts are cached per process against the cabinet's change mark: after every
kind of change to a cabinet's items the served counts equal freshly computed ones, a
refused decision moves no mark, and two transactions open at once that touch the same
cabinets (in opposite order) both commit and both count."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import func, select

from backend.clock import region_today
from backend.db.engine import make_sessionmaker
from backend.db.models import CabinetMark
from backend.domain.cabinet.marks import touch
from backend.domain.cabinet.services import folder_counts
from tests.backend.conftest import Env
from tests.backend.test_resolutions import registered_for, resolve
from tests.backend.workflow import (
    create_draft,
    principal_at,
    route_draft,
    scalar,
    sign_step,
    visa,
)

LOGINS = ("lawyer", "minister.digital", "minister.finance", "governor")


async def _served(env: Env, login: str) -> list[dict[str, object]]:
    position = await env.own_position(login)
    r = await env.client.get(f"/api/v1/cabinets/{position}/folders", headers=await env.login(login))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def _fresh(env: Env, login: str) -> list[dict[str, object]]:
    now = dt.datetime.now(dt.UTC)
    principal = await principal_at(env, login, now)
    cabinet = principal.cabinet(uuid.UUID(await env.own_position(login)))
    async with make_sessionmaker(env.engine)() as session:
        counts = await folder_counts(session, cabinet, region_today(env.settings.timezone, now))
    return [
        {"folder": c.folder, "count": c.count, "overdue": c.overdue, "unread": c.unread}
        for c in counts
    ]


async def _all_match(env: Env, step: str) -> None:
    for login in LOGINS:
        assert await _served(env, login) == await _fresh(env, login), (step, login)


async def through_every_change(env: Env, check: Callable[[str], Awaitable[None]]) -> None:
    """Every kind of change to cabinets' items, with `check(step)` before the first and
    after each: a route asks two approvers, their visas close their items and complete the
    stage (the governor asked to sign), the signature registers the draft and delivers it
    to its addressee, a letter arrives to resolve, is read, resolved (executors' and
    control items) and reported on (the control item flagged unread again). Used for the
    cached counts here and the cached queue pages (test_queue_cache.py)."""
    await check("start")
    doc = await create_draft(env, addressees=[("minister.finance", "resolve")])
    await route_draft(env, doc, [["minister.digital", "minister.finance"]], ["governor"])
    await check("asked")
    assert (await visa(env, doc["id"], "minister.digital")).status_code == 201
    await check("one visa")
    assert (await visa(env, doc["id"], "minister.finance")).status_code == 201
    await check("stage done, the governor asked to sign")
    await sign_step(env, doc, "governor")
    await check("signed and registered, delivered to the addressee")
    letter = await registered_for(env)
    await check("a letter to resolve")
    r = await env.client.post(
        f"/api/v1/cabinets/{await env.own_position('governor')}/read",
        json={"document_id": letter["id"]},
        headers=await env.login("governor"),
    )
    assert r.status_code == 204
    await check("read")
    r = await resolve(env, letter["id"], "governor")
    assert r.status_code == 201, r.text
    await check("resolved")
    responsible = r.json()["assignments"][0]
    r = await env.client.post(
        f"/api/v1/assignments/{responsible['id']}/report",
        json={"text": "Исполнено"},
        headers=await env.login("minister.digital"),
    )
    assert r.status_code == 201, r.text
    await check("reported")


async def test_cached_counts_follow_every_change(env: Env) -> None:
    await through_every_change(env, lambda step: _all_match(env, step))


async def test_a_refused_decision_moves_no_mark(env: Env) -> None:
    doc = await create_draft(env)
    await route_draft(env, doc, [["minister.digital"]], ["governor"])
    marks = select(func.coalesce(func.sum(CabinetMark.version), 0))
    before = await scalar(env, marks)
    r = await visa(env, doc["id"], "minister.digital", sha="0" * 64)
    assert r.status_code == 409, r.text
    assert await scalar(env, marks) == before


async def test_concurrent_commits_on_the_same_cabinets_both_count(env: Env) -> None:
    if env.name != "pg":
        pytest.skip("SQLite has one writer: its transactions never interleave")
    a = uuid.UUID(await env.own_position("lawyer"))
    b = uuid.UUID(await env.own_position("governor"))
    sessions = make_sessionmaker(env.engine)
    marks = (
        select(CabinetMark.position_id, func.sum(CabinetMark.version))
        .where(CabinetMark.position_id.in_([a, b]))
        .group_by(CabinetMark.position_id)
    )
    async with sessions() as s:
        before = {p: int(v) for p, v in (await s.execute(marks)).all()}
    both_touched = asyncio.Event()
    touched = 0

    async def commit(order: tuple[uuid.UUID, ...]) -> None:
        nonlocal touched
        async with sessions() as s:
            await s.connection()  # each its own transaction, open at the same time
            for position in order:
                touch(s, (position,))
            touched += 1
            if touched == 2:
                both_touched.set()
            await both_touched.wait()
            await s.commit()

    await asyncio.wait_for(asyncio.gather(commit((a, b)), commit((b, a))), timeout=20)
    async with sessions() as s:
        after = {p: int(v) for p, v in (await s.execute(marks)).all()}
    assert after == {p: before.get(p, 0) + 2 for p in (a, b)}
