"""The push worker: outbox events → deliveries → push services, in a loop.

Runs inside `kabinet serve` and in `kabinet worker`; any number of them may run against
one PostgreSQL (claims use SKIP LOCKED)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt

import structlog

from backend.domain.notifications import outbox
from backend.domain.notifications.delivery import deliver_due
from backend.domain.notifications.fanout import fan_out
from backend.web.deps import Services
from push import PushSender, VapidSigner

log = structlog.get_logger("kabinet.push")


def make_sender(services: Services, *, trust_env: bool = True) -> PushSender:
    signer = VapidSigner(services.push.keys, services.settings.vapid_subject)
    return PushSender(signer, services.push.policy, trust_env=trust_env)


async def push_round(services: Services, sender: PushSender, now: dt.datetime) -> int:
    """Fan out due events and deliver due pushes once; returns the work done."""
    async with services.sessions() as session:
        consumed = await fan_out(session, now, services.settings.timezone)
    sent = await deliver_due(services.sessions, sender, now)
    return consumed + sent


async def run_push_worker(services: Services, stop: asyncio.Event) -> None:
    async with make_sender(services) as sender:
        while not stop.is_set():
            # Cleared before the round, so a commit during the round still wakes the next.
            outbox.committed.clear()
            try:
                did = await push_round(services, sender, dt.datetime.now(dt.UTC))
            except Exception:  # the loop must outlive one bad round (database restart, …)
                log.exception("push round failed")
                did = 0
            if did:
                # Under a stream of decisions each commit would wake a round for one or two
                # events (and, with several processes, rounds finding the rows already
                # taken by another): a dozen statements each. A short pause after a round
                # that found work lets the next take what arrived meanwhile. An event after
                # a quiet spell still leaves at once: the pause follows work, never precedes it.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), services.settings.push_gather_seconds)
            else:
                # Sleep until the poll interval ends, this process commits an outbox row,
                # or we are told to stop.
                waits = [
                    asyncio.ensure_future(stop.wait()),
                    asyncio.ensure_future(outbox.committed.wait()),
                ]
                await asyncio.wait(
                    waits,
                    timeout=services.settings.push_poll_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for w in waits:
                    w.cancel()
