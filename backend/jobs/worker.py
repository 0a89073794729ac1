"""The background worker: async loops that run beside the HTTP app (`kabinet serve`, when
`KABINET_RUN_JOBS` is true) or on their own (`kabinet worker`).

`LOOPS` is the one hook: a loop is an async function of (services, stop) that works until
`stop` is set and never lets an error escape (it logs and carries on): the time-driven
jobs and push delivery. Every loop must be safe to run in several processes at once: claim
work with `FOR UPDATE SKIP LOCKED` (see backend.jobs.registry).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from backend.clock import utcnow
from backend.jobs.push_worker import run_push_worker
from backend.jobs.registry import run_due
from backend.web.deps import Services

log = structlog.get_logger("kabinet.worker")

Loop = Callable[[Services, asyncio.Event], Awaitable[None]]


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep up to `seconds`, waking at once when `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def jobs_loop(services: Services, stop: asyncio.Event) -> None:
    """Run the due time-driven jobs every `jobs_interval_seconds`."""
    settings = services.settings
    while not stop.is_set():
        try:
            ran = await run_due(settings, utcnow(), engine=services.engine)
            if ran:
                log.info("jobs_ran", jobs=ran)
        except Exception:
            log.exception("jobs_failed")
        await pause(stop, settings.jobs_interval_seconds)


LOOPS: list[Loop] = [jobs_loop, run_push_worker]


async def run_loops(
    services: Services, stop: asyncio.Event, loops: list[Loop] | None = None
) -> None:
    """Run every loop until `stop` is set."""
    chosen = LOOPS if loops is None else loops
    log.info("worker_started", loops=[getattr(loop, "__name__", repr(loop)) for loop in chosen])
    await asyncio.gather(*(loop(services, stop) for loop in chosen))
    log.info("worker_stopped")


def start_in_background(services: Services) -> Callable[[], Awaitable[None]]:
    """Start the loops as a task of the running event loop; return the coroutine function
    that stops them (for an app's lifespan)."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_loops(services, stop), name="kabinet-worker")

    async def shutdown() -> None:
        stop.set()
        try:
            # A loop in the middle of a transaction finishes it; one stuck longer is
            # cancelled, which rolls its transaction back (each unit of work is atomic).
            await asyncio.wait_for(task, timeout=30)
        except TimeoutError:
            log.warning("worker_cancelled")
        except Exception:
            log.exception("worker_failed")

    return shutdown
