"""Time-driven jobs. Each job is an async function of (settings, sessions, moment) that does
what is due at that moment and returns whether it did anything; `kabinet tick --at` runs
them as of any moment, the worker loop (`backend.jobs.worker`) as of now.

Several processes may run the jobs at once (`kabinet serve --workers 2`, or two hosts on
one PostgreSQL): every job claims its due rows with `SELECT … FOR UPDATE SKIP LOCKED` in
the transaction that handles them, so a row is done by exactly one process and the others
pass over it instead of waiting. SQLite has one writer, and each job re-checks its rows
under the write lock, which is enough there (`FOR UPDATE` is not rendered for SQLite)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from backend.db.engine import make_engine, make_sessionmaker
from backend.jobs.auto_visa import auto_visa
from backend.jobs.housekeeping import expire_idempotency
from backend.jobs.reminders import overdue, reminders
from backend.settings import Settings

Sessions = async_sessionmaker[AsyncSession]
Job = Callable[[Settings, Sessions, dt.datetime], Awaitable[bool]]

JOBS: dict[str, Job] = {
    "auto_visa": auto_visa,
    "reminders": reminders,
    "overdue": overdue,
    "expire_idempotency": expire_idempotency,
}


async def run_due(
    settings: Settings, at: dt.datetime, engine: AsyncEngine | None = None
) -> list[str]:
    """Run every job as of `at`; the names of those that did something. Without an engine
    (the `tick` command, tests) one is made for the call and disposed after it."""
    own = engine is None
    eng = make_engine(settings) if engine is None else engine
    sessions = make_sessionmaker(eng)
    ran = []
    try:
        for name, job in JOBS.items():
            if await job(settings, sessions, at):
                ran.append(name)
    finally:
        if own:
            await eng.dispose()
    return ran
