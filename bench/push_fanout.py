"""Push fan-out at region scale: one event to N subscriptions, delivered through a real
loopback push service (separate process) that decrypts every message and checks VAPID;
then a stream of single decisions to measure decision → delivery latency.

    .venv/bin/python -m bench.push_fanout [--subscriptions 20000] [--singles 200]

Prints pushes per second for the fan-out and p50/p99 of (receipt − decision) times.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import insert, select

from backend.app import build_services
from backend.db.ids import new_id
from backend.db.migrate import upgrade
from backend.db.models import PositionHolder, PushSubscription, User
from backend.demo.loader import load_demo
from backend.domain.notifications.outbox import emit
from backend.jobs.push_worker import run_push_worker
from backend.settings import load_settings
from bench.run import create_database, drop_database

PG = os.environ.get("KABINET_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
DB = "kabinet_bench_push"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Service:
    def __init__(self, count: int, workdir: Path) -> None:
        self.file = workdir / "subs.json"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.push_service", str(count), str(self.file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"
        self.info = json.loads(self.file.read_text())

    def ask(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def count(self) -> tuple[int, int]:
        received, rejected = self.ask("count").split()
        return int(received), int(rejected)

    def received(self, path: Path) -> list[dict[str, float | str]]:
        self.ask(f"dump {path}")
        return list(json.loads(path.read_text()))

    def stop(self) -> None:
        self.ask("quit")
        self.proc.wait(timeout=30)


async def wait_for_count(service: Service, n: int, deadline: float) -> None:
    """Poll the service process (it lives elsewhere: no event to wait on) until n arrived."""
    while time.time() < deadline:
        if (await asyncio.to_thread(service.count))[0] >= n:
            return
        await asyncio.sleep(0.25)
    raise TimeoutError(f"fewer than {n} pushes arrived in time")


async def run(args: argparse.Namespace, workdir: Path) -> None:
    url = f"{PG}/{DB}".replace("postgresql://", "postgresql+asyncpg://", 1)
    await asyncio.to_thread(upgrade, "head", url)
    service = Service(args.subscriptions + 1, workdir)
    settings = dataclasses.replace(
        load_settings(),
        database_url=url,
        data_dir=workdir,
        push_allowlist=(service.info["origin"],),
        push_poll_seconds=args.poll,
        db_pool_size=10,
    )
    services = build_services(settings)
    await load_demo(services.engine, services.blobs, documents=10, seed=3)
    subs = service.info["subscriptions"]
    async with services.sessions() as session:
        governor = await session.scalar(select(User.id).where(User.login == "governor"))
        position = await session.scalar(
            select(PositionHolder.position_id).where(PositionHolder.user_id == governor)
        )
        minister = await session.scalar(select(User.id).where(User.login == "minister.digital"))
        m_position = await session.scalar(
            select(PositionHolder.position_id).where(PositionHolder.user_id == minister)
        )
        rows = [
            {
                "id": new_id(),
                "user_id": governor if i < args.subscriptions else minister,
                "endpoint": s["endpoint"],
                "endpoint_hash": uuid.uuid4().hex + uuid.uuid4().hex,
                "p256dh": s["p256dh"],
                "auth": s["auth"],
                "device_name": f"bench {i}",
                "created_at": dt.datetime.now(dt.UTC),
            }
            for i, s in enumerate(subs)
        ]
        for i in range(0, len(rows), 5000):
            await session.execute(insert(PushSubscription), rows[i : i + 5000])
        await session.commit()
    assert position is not None and m_position is not None

    stop = asyncio.Event()
    # The production loop, with the production poll interval unless --poll says otherwise.
    task = asyncio.create_task(run_push_worker(services, stop))
    # 1. Fan-out: one decision's event to every subscription of the governor.
    t0 = time.time()
    async with services.sessions() as session:
        emit(
            session,
            "sign.requested",
            dt.datetime.now(dt.UTC),
            document_id=str(uuid.uuid4()),
            positions=[str(position)],
            folder="sign",
        )
        await session.commit()
    await wait_for_count(service, args.subscriptions, time.time() + 600)
    got = await asyncio.to_thread(service.received, workdir / "fanout.json")
    last = max(float(m["at"]) for m in got)
    fan_lat = [float(m["at"]) - t0 for m in got]
    # 2. Singles: decisions one after another, each to one subscription.
    sent_at: dict[str, float] = {}
    for _n in range(args.singles):
        doc = str(uuid.uuid4())
        async with services.sessions() as session:
            emit(
                session,
                "visa.requested",
                dt.datetime.now(dt.UTC),
                document_id=doc,
                positions=[str(m_position)],
                folder="visa",
            )
            await session.commit()
        sent_at[f"visa.requested:{doc}"] = time.time()
        await asyncio.sleep(args.gap)
    expected = args.subscriptions + args.singles
    await wait_for_count(service, expected, time.time() + 120)
    stop.set()
    await task
    all_msgs = await asyncio.to_thread(service.received, workdir / "all.json")
    single = [float(m["at"]) - sent_at[str(m["tag"])] for m in all_msgs if m["tag"] in sent_at]
    received, rejected = await asyncio.to_thread(service.count)
    service.stop()
    await services.engine.dispose()
    print(
        f"fan-out: {args.subscriptions} pushes in {last - t0:.2f} s "
        f"= {args.subscriptions / (last - t0):.0f} pushes/s; "
        f"decision→delivery p50 {percentile(fan_lat, 50):.2f} s, "
        f"p99 {percentile(fan_lat, 99):.2f} s"
    )
    if single:
        print(
            f"single decisions ({args.singles} events to one subscription, "
            f"{args.gap * 1000:.0f} ms apart): decision→delivery "
            f"p50 {statistics.median(single) * 1000:.0f} ms, "
            f"p99 {percentile(single, 99) * 1000:.0f} ms"
        )
    print(f"service: {received} received, {rejected} rejected")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscriptions", type=int, default=20000)
    parser.add_argument("--singles", type=int, default=50)
    parser.add_argument("--gap", type=float, default=0.1)
    parser.add_argument("--poll", type=float, default=1.0, help="worker poll interval (s)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    create_database(PG, DB)
    try:
        with tempfile.TemporaryDirectory(prefix="kabinet-push-bench-") as tmp:
            asyncio.run(run(args, Path(tmp)))
    finally:
        if not args.keep:
            drop_database(PG, DB)


if __name__ == "__main__":
    main()
