"""Time-driven jobs. Each job is an async function of (settings, moment) that does what is
due at that moment and returns whether it did anything. The workflow adds its jobs
(auto-visa, reminders, overdue marks) here; `kabinet tick --at` runs them as of any moment."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from backend.jobs.auto_visa import auto_visa
from backend.settings import Settings

Job = Callable[[Settings, dt.datetime], Awaitable[bool]]

JOBS: dict[str, Job] = {"auto_visa": auto_visa}


async def run_due(settings: Settings, at: dt.datetime) -> list[str]:
    ran = []
    for name, job in JOBS.items():
        if await job(settings, at):
            ran.append(name)
    return ran
