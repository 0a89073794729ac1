"""Instructions per request of an endpoint, counted by valgrind, for comparing two versions
of the code on a machine whose speed drifts.

    .venv/bin/python -m bench.instructions --db kb1m --data-dir /tmp/kb1m --template kb1m_tpl visa
    cd /tmp/other-checkout && PYTHONPATH=$PWD /work/main/.venv/bin/python -m bench.instructions \
        --db kb1m_b --data-dir /tmp/kb1m --template kb1m_tpl visa   # at the same time

CPU time per request moved by ±10 % between back-to-back runs on the VMs this project is
measured on, which hides a change worth a few per cent. `valgrind --tool=callgrind` counts
the instructions the app process executes instead, which does not depend on how fast the
machine is at the moment. It runs `bench.inprocess` (the app called in-process, the
database real) twice under valgrind, with `--requests` N and M, and prints
(instructions(M) − instructions(N)) / (requests sent in M − requests sent in N): the
start-up and the imports cancel out (the lists of items and tokens, which grow with
`--requests`, are a small share). `bench.inprocess` sends 2 × `--requests` requests to
the endpoints that take another item each time and 2.2 × to the others (a tenth more
as the warm-up of each round).
Only the app's process is counted, not PostgreSQL's. Under valgrind the app runs ~30×
slower, so a pair of runs takes minutes (about 2 of them are start-up).

`visa` and the other endpoints that take another item each time consume the data: with
`--template T` the database `--db` is dropped and created again from the template `T`
before each run (`CREATE DATABASE … TEMPLATE`, seconds), so both runs, and the runs of
another checkout, start from the same data and take the same items. Make the template
once after a load: `CREATE DATABASE kb1m_tpl TEMPLATE kb1m`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import asyncpg

_COLLECTED = re.compile(r"Collected : (\d+)")


async def _reset(pg: str, db: str, template: str) -> None:
    conn = await asyncpg.connect(f"{pg.rstrip('/')}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{db}"')
        await conn.execute(f'CREATE DATABASE "{db}" TEMPLATE "{template}"')
    finally:
        await conn.close()


def _count(args: argparse.Namespace, requests: int) -> int:
    if args.template:
        asyncio.run(_reset(args.pg, args.db, args.template))
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "bench.inprocess",
        args.endpoint,
        "--db",
        args.db,
        "--data-dir",
        str(args.data_dir),
        "--pg",
        args.pg,
        "--requests",
        str(requests),
        "--skip",
        str(args.skip),
    ]
    done = subprocess.run(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return int(found.group(1))


def main() -> None:
    p = argparse.ArgumentParser(prog="bench.instructions", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "endpoint", choices=["health", "me", "folders", "queue", "queue-cold", "card-cold", "visa"]
    )
    p.add_argument("--db", default="kabinet_bench")
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--small", type=int, default=20, help="--requests of the first run")
    p.add_argument("--large", type=int, default=220, help="--requests of the second run")
    p.add_argument("--skip", type=int, default=0)
    p.add_argument("--template", help="recreate --db from this template before each run")
    args = p.parse_args()
    small = _count(args, args.small)
    large = _count(args, args.large)
    # What bench.inprocess sends per --requests (its rounds and warm-ups).
    sent = 2.0 if args.endpoint in ("queue-cold", "card-cold", "visa") else 2.2
    per = (large - small) / (sent * (args.large - args.small))
    print(
        f"{args.endpoint}: {per / 1e6:.3f} M instructions per request "
        f"({small:,} with --requests {args.small}, {large:,} with {args.large})"
    )


if __name__ == "__main__":
    main()
