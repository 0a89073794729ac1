"""Time-driven jobs split between app processes: same work, none of it done twice.

    .venv/bin/python -m bench.jobs_split --db kabinet_bench_10k --data-dir DIR

Takes a loaded bench database (`bench.run --keep`), copies it twice (CREATE DATABASE …
TEMPLATE), and on each copy runs `kabinet tick --at T` — T far enough ahead that every
active visa stage is overdue — once with one process and once with N processes started
together, as N app processes would at the same moment. Prints the wall time of each, the
auto-visas, reminders and overdue notices written, and the duplicates found (an approval
auto-visaed twice, a stage or assignment notified twice): the last must be zero.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time

import asyncpg

from bench.run import KABINET, ROOT, _admin, _db_url, drop_database

_COUNTS = {
    "active stages": "SELECT count(*) FROM route_stages WHERE state = 'active'",
    "auto-visas": "SELECT count(*) FROM approvals WHERE auto",
    "audit visa.auto_approved": (
        "SELECT count(*) FROM audit_events WHERE action = 'visa.auto_approved'"
    ),
    "outbox visa.auto_approved": (
        "SELECT count(*) FROM outbox_events WHERE kind = 'visa.auto_approved'"
    ),
    "outbox reminder.deadline_tomorrow": (
        "SELECT count(*) FROM outbox_events WHERE kind = 'reminder.deadline_tomorrow'"
    ),
    "outbox assignment.overdue": (
        "SELECT count(*) FROM outbox_events WHERE kind = 'assignment.overdue'"
    ),
}
_DUPLICATES = {
    "approvals audited as auto-visaed twice": """
        SELECT count(*) FROM (
            SELECT object_id FROM audit_events WHERE action = 'visa.auto_approved'
            GROUP BY object_id HAVING count(*) > 1) d""",
    "overdue notices for one assignment twice": """
        SELECT count(*) FROM (
            SELECT payload->>'assignment_id' FROM outbox_events
            WHERE kind = 'assignment.overdue'
            GROUP BY 1 HAVING count(*) > 1) d""",
    "deadline reminders for one stage or assignment twice": """
        SELECT count(*) FROM (
            SELECT coalesce(payload->>'stage_id', payload->>'assignment_id') FROM outbox_events
            WHERE kind = 'reminder.deadline_tomorrow'
            GROUP BY 1 HAVING count(*) > 1) d""",
}


async def _counts(url: str, queries: dict[str, str]) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        return {k: int(await conn.fetchval(q)) for k, q in queries.items()}
    finally:
        await conn.close()


def _run(base: str, db: str, data_dir: str, processes: int, at: str) -> dict[str, object]:
    url = _db_url(base, db)
    env = {
        **os.environ,
        "KABINET_DATABASE_URL": url.replace("postgresql://", "postgresql+asyncpg://", 1),
        "KABINET_DATA_DIR": data_dir,
        "KABINET_LOG_FORMAT": "json",
    }
    before = asyncio.run(_counts(url, _COUNTS))
    started = time.perf_counter()
    logs = [tempfile.TemporaryFile() for _ in range(processes)]  # noqa: SIM115 (closed below)
    procs = [
        subprocess.Popen(
            [*KABINET, "tick", "--at", at],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.DEVNULL,
        )
        for log in logs
    ]
    codes = [p.wait() for p in procs]
    wall = time.perf_counter() - started
    # Each process logs the stages it auto-visaed and the notices it wrote: who did what.
    shares = []
    for log in logs:
        log.seek(0)
        stages = notices = 0
        for line in log.read().decode(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "auto_visa" and event.get("visas"):
                stages += 1
            elif event.get("event") in ("reminders", "overdue"):
                notices += int(event.get("items") or event.get("assignments") or 0)
        shares.append(f"{stages} stages/{notices} notices")
        log.close()
    after = asyncio.run(_counts(url, _COUNTS))
    dups = asyncio.run(_counts(url, _DUPLICATES))
    return {
        "processes": processes,
        "exit codes": codes,
        "wall s": round(wall, 2),
        "per process": "; ".join(shares),
        **{k: after[k] - before[k] if k != "active stages" else after[k] for k in after},
        "active stages before": before["active stages"],
        **dups,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.jobs_split", description=__doc__.split("\n\n")[0])
    p.add_argument("--db", required=True, help="a loaded bench database (kept by bench.run)")
    p.add_argument("--data-dir", required=True, help="its data dir (keys, calendar)")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--days-ahead", type=int, default=400)
    args = p.parse_args(argv)
    at = (dt.datetime.now(dt.UTC) + dt.timedelta(days=args.days_ahead)).isoformat()
    print(f"kabinet tick --at {at}", file=sys.stderr)
    rows = []
    for n in (1, args.processes):
        copy = f"{args.db}_jobs{n}"
        asyncio.run(
            _admin(
                args.pg,
                f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)',
                f'CREATE DATABASE "{copy}" TEMPLATE "{args.db}"',
            )
        )
        try:
            rows.append(_run(args.pg, copy, args.data_dir, n, at))
        finally:
            drop_database(args.pg, copy)
        print(rows[-1], file=sys.stderr)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
