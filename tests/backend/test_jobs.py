"""Time-driven jobs run by several workers at once, reminders and overdue notices, and the
worker loop inside `kabinet serve` and as `kabinet worker`.

Jobs run as of explicit moments in 2019–2020, before anything of the demo region, so each
test sees only its own due rows (the demo's deadlines are around today)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from backend import cli
from backend.app import create_app
from backend.db.migrate import upgrade
from backend.db.models import (
    Approval,
    Assignment,
    AuditEvent,
    IdempotencyRecord,
    Route,
    RouteStage,
    User,
)
from backend.jobs import worker
from backend.jobs.registry import JOBS, run_due
from backend.settings import load_settings
from tests.backend.conftest import Env
from tests.backend.test_resolutions import registered_for, resolve
from tests.backend.workflow import (
    create_draft,
    open_items,
    outbox,
    route_draft,
    scalar,
    start_route_at,
    visa,
)

# A hang guard for code that must not wait on a lock; not a timing assertion.
NO_HANG = 120


def tz(env: Env) -> ZoneInfo:
    return ZoneInfo(env.settings.timezone)


async def routed_at(env: Env, started: dt.datetime, deadline_days: int = 1) -> uuid.UUID:
    """A draft on a route [digital + finance] → [first deputy] → governor, started then."""
    doc = await create_draft(env)
    await route_draft(
        env,
        doc,
        [["minister.digital", "minister.finance"], ["first.deputy"]],
        ["governor"],
        deadline_days=deadline_days,
        start=False,
    )
    await start_route_at(env, doc["id"], started)
    return uuid.UUID(doc["id"])


async def count(env: Env, model: Any, *where: Any) -> int:
    return int(await scalar(env, select(func.count()).select_from(model).where(*where)))


async def test_two_workers_auto_visa_each_approval_once(env: Env) -> None:
    assert set(JOBS) >= {"auto_visa", "reminders", "overdue"}
    started = dt.datetime(2019, 3, 4, 10, 0, tzinfo=tz(env))  # Monday; deadline Tuesday
    docs = [await routed_at(env, started) for _ in range(16)]
    at = dt.datetime(2019, 3, 6, 0, 0, tzinfo=tz(env))  # Tuesday is over
    # Two runners, each with its own engine and connections, over the same due stages.
    ran = await asyncio.wait_for(
        asyncio.gather(run_due(env.settings, at), run_due(env.settings, at)), NO_HANG
    )
    assert any("auto_visa" in r for r in ran)
    for doc_id in docs:
        autos = await count(env, Approval, Approval.document_id == doc_id, Approval.auto.is_(True))
        audited = await count(
            env,
            AuditEvent,
            AuditEvent.document_id == doc_id,
            AuditEvent.action == "visa.auto_approved",
        )
        completed = await count(
            env,
            AuditEvent,
            AuditEvent.document_id == doc_id,
            AuditEvent.action == "route.stage_completed",
        )
        # Stage 1 (first deputy) was asked exactly once: the stage moved on once.
        asked = await count(env, Approval, Approval.document_id == doc_id)
        events = await outbox(env, "visa.auto_approved", str(doc_id))
        assert (autos, audited, completed, asked, len(events)) == (2, 2, 1, 3, 1), doc_id
        assert await open_items(env, str(doc_id), "visa") == [
            await env.own_position("first.deputy")
        ]
    # Nothing is due any more at that moment.
    assert "auto_visa" not in await run_due(env.settings, at)


async def test_a_route_being_decided_is_passed_over_not_waited_for(env: Env) -> None:
    if env.name != "pg":
        pytest.skip("row locks with SKIP LOCKED are PostgreSQL's; SQLite has one writer")
    started = dt.datetime(2019, 4, 1, 10, 0, tzinfo=tz(env))  # Monday; deadline Tuesday
    busy, free = await routed_at(env, started), await routed_at(env, started)
    at = dt.datetime(2019, 4, 3, 0, 0, tzinfo=tz(env))

    async def autos(doc_id: uuid.UUID) -> int:
        return await count(env, Approval, Approval.document_id == doc_id, Approval.auto.is_(True))

    # Someone is deciding on `busy` right now: its route row is locked.
    async with env.engine.connect() as holder:
        await holder.execute(select(Route.id).where(Route.document_id == busy).with_for_update())
        ran = await asyncio.wait_for(run_due(env.settings, at), NO_HANG)
        assert "auto_visa" in ran
        assert (await autos(busy), await autos(free)) == (0, 2)
        await holder.rollback()
    await asyncio.wait_for(run_due(env.settings, at), NO_HANG)
    assert (await autos(busy), await autos(free)) == (2, 2)


async def test_reminders_the_working_day_before_and_overdue_once(env: Env) -> None:
    z = tz(env)
    # A stage started on Wednesday with three working days: due Monday 16 March 2020.
    doc_id = await routed_at(env, dt.datetime(2020, 3, 11, 10, 0, tzinfo=z), deadline_days=3)
    deadline = await scalar(
        env,
        select(RouteStage.deadline)
        .join(Approval, Approval.stage_id == RouteStage.id)
        .where(Approval.document_id == doc_id),
    )
    assert deadline == dt.date(2020, 3, 16)
    assert (await visa(env, str(doc_id), "minister.digital")).status_code == 201
    # An assignment due the same Monday, and one already reported (no notices for it).
    doc = await registered_for(env)
    res = (await resolve(env, doc["id"], "governor")).json()
    responsible, other = (uuid.UUID(a["id"]) for a in res["assignments"])
    async with env.engine.begin() as conn:
        await conn.execute(
            update(Assignment)
            .where(Assignment.resolution_id == uuid.UUID(res["id"]))
            .values(deadline=dt.date(2020, 3, 16))
        )
    r = await env.client.post(
        f"/api/v1/assignments/{other}/report",
        json={"text": "Готово"},
        headers=await env.login("minister.finance"),
    )
    assert r.status_code == 201

    async def notices(kind: str) -> list[dict[str, Any]]:
        return [*await outbox(env, kind, str(doc_id)), *await outbox(env, kind, doc["id"])]

    # Thursday: the deadline is two working days away.
    await run_due(env.settings, dt.datetime(2020, 3, 12, 23, 59, tzinfo=z))
    assert await notices("reminder.deadline_tomorrow") == []
    # Friday: Monday is the next working day, so the deadline is "tomorrow".
    ran = await run_due(env.settings, dt.datetime(2020, 3, 13, 9, 0, tzinfo=z))
    assert "reminders" in ran
    sent = await notices("reminder.deadline_tomorrow")
    assert len(sent) == 2
    stage_note = next(n for n in sent if n["folder"] == "visa")
    assert stage_note["positions"] == [await env.own_position("minister.finance")]
    assert stage_note["deadline"] == "2020-03-16"
    task_note = next(n for n in sent if n["folder"] == "execute")
    assert task_note["assignment_id"] == str(responsible)
    assert task_note["positions"] == [await env.own_position("minister.digital")]
    # Once per item, however often the job runs.
    await run_due(env.settings, dt.datetime(2020, 3, 13, 18, 0, tzinfo=z))
    await run_due(env.settings, dt.datetime(2020, 3, 16, 9, 0, tzinfo=z))
    assert len(await notices("reminder.deadline_tomorrow")) == 2
    # Monday is the deadline itself: not overdue yet.
    await run_due(env.settings, dt.datetime(2020, 3, 16, 23, 59, 59, tzinfo=z))
    assert await notices("assignment.overdue") == []
    ran = await run_due(env.settings, dt.datetime(2020, 3, 17, 0, 0, tzinfo=z))
    assert "overdue" in ran
    overdue = await notices("assignment.overdue")
    gov = await env.own_position("governor")
    assert [(n["assignment_id"], n["positions"]) for n in overdue] == [
        (str(responsible), [await env.own_position("minister.digital"), gov])
    ]
    await run_due(env.settings, dt.datetime(2020, 3, 18, 9, 0, tzinfo=z))
    assert len(await notices("assignment.overdue")) == 1


async def test_serve_turns_the_jobs_on_and_tests_leave_them_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # setenv first so that the variable is removed again after the test.
    monkeypatch.setenv("KABINET_RUN_JOBS", "")
    monkeypatch.delenv("KABINET_RUN_JOBS")
    assert load_settings().run_jobs is False
    seen: list[str | None] = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: seen.append(os.environ["KABINET_RUN_JOBS"]))
    cli.main(["serve"])
    assert load_settings().run_jobs is True
    cli.main(["serve", "--no-jobs"])
    assert seen == ["1", "0"]


async def test_app_lifespan_runs_the_worker_loops(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With run_jobs the app starts every loop of `worker.LOOPS` and stops them on shutdown;
    the jobs loop calls run_due with the app's engine."""
    called = asyncio.Event()
    engines: list[Any] = []

    async def fake_run_due(settings: Any, at: dt.datetime, engine: Any = None) -> list[str]:
        engines.append(engine)
        called.set()
        return []

    monkeypatch.setattr(worker, "run_due", fake_run_due)
    app = create_app(dataclasses.replace(env.settings, run_jobs=True))
    async with app.lifespan():
        await asyncio.wait_for(called.wait(), NO_HANG)
    assert engines[0] is app.state.services.engine


async def test_kabinet_worker_runs_until_sigterm(tmp_path: Path) -> None:
    await asyncio.to_thread(upgrade, "head", f"sqlite+aiosqlite:///{tmp_path / 'kabinet.db'}")
    env = {
        **os.environ,
        "KABINET_DATA_DIR": str(tmp_path),
        "KABINET_LOG_FORMAT": "json",
        "KABINET_JOBS_INTERVAL": "3600",
    }
    env.pop("KABINET_DATABASE_URL", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "backend.cli",
        "worker",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    lines = []
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), NO_HANG)).decode()
        assert line, "".join(lines)
        lines.append(line)
        if "worker_started" in line:
            break
    assert "jobs_loop" in lines[-1]
    proc.send_signal(signal.SIGTERM)
    rest = (await asyncio.wait_for(proc.communicate(), NO_HANG))[0].decode()
    assert proc.returncode == 0, "".join(lines) + rest
    assert "worker_stopped" in rest


async def test_two_tick_processes_split_the_due_stages(env: Env) -> None:
    """Two real `kabinet tick --at` processes at once, as two app hosts would run the jobs."""
    started = dt.datetime(2019, 5, 6, 10, 0, tzinfo=tz(env))  # Monday; deadline Tuesday
    docs = [await routed_at(env, started) for _ in range(8)]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "backend.cli",
            "tick",
            "--at",
            "2019-05-08T00:00:00+12:00",
            env={
                **os.environ,
                "KABINET_DATA_DIR": str(env.settings.data_dir),
                "KABINET_DATABASE_URL": env.settings.database_url,
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outs = [await asyncio.wait_for(p.communicate(), NO_HANG) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e.decode() for _, e in outs]
    assert any("auto_visa" in e.decode() for _, e in outs)
    for doc_id in docs:
        autos = await count(env, Approval, Approval.document_id == doc_id, Approval.auto.is_(True))
        completed = await count(
            env,
            AuditEvent,
            AuditEvent.document_id == doc_id,
            AuditEvent.action == "route.stage_completed",
        )
        asked = await count(env, Approval, Approval.document_id == doc_id)
        assert (autos, completed, asked) == (2, 1, 3), doc_id


async def test_idempotency_records_expire_after_the_configured_days(env: Env) -> None:
    """Records older than KABINET_IDEMPOTENCY_DAYS are deleted; younger ones stay."""
    now = dt.datetime.now(dt.UTC)
    tag = uuid.uuid4().hex[:8]
    ages = {f"old-{tag}-{i}": dt.timedelta(days=31 + i) for i in range(3)}
    ages[f"recent-{tag}"] = dt.timedelta(days=29)
    async with env.app.state.services.sessions() as session:
        user_id = await session.scalar(select(User.id).where(User.login == "governor"))
        for key, age in ages.items():
            session.add(
                IdempotencyRecord(
                    id=uuid.uuid4(),
                    user_id=user_id,
                    key=key,
                    request_hash="0" * 64,
                    status_code=201,
                    response_body="{}",
                    created_at=now - age,
                )
            )
        await session.commit()

    async def keys() -> set[str]:
        async with env.app.state.services.sessions() as session:
            found = await session.scalars(
                select(IdempotencyRecord.key).where(IdempotencyRecord.key.like(f"%-{tag}%"))
            )
            return set(found)

    assert await keys() == set(ages)
    settings = dataclasses.replace(env.settings, idempotency_days=30)
    assert "expire_idempotency" in await run_due(settings, now)
    assert await keys() == {f"recent-{tag}"}
    assert "expire_idempotency" not in await run_due(settings, now)
