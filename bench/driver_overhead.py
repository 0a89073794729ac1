"""CPU per execution of the queue statement through each layer, in one process.

    .venv/bin/python -m bench.driver_overhead --db kabinet_bench_10k

Needs a loaded bench database (`python -m bench.run --keep --db NAME`). Prints the CPU time
(process time, so other tenants of the machine hardly matter) of one execution of the
governor's `resolve` queue statement (21 rows) through: raw asyncpg, `fetch_rows` (the
direct-driver path in backend/db/fastread.py) in a read-only session (a connection from the
read lane per statement, as GET requests do; closed, and unclosed as a GET leaves it) and
in an autocommit one, an `AsyncSession` in autocommit, and an `AsyncSession` with its
transaction (BEGIN … ROLLBACK, as every request had before). Each path includes opening
its session, and closing it but where said.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from backend.db.fastread import READ_ONLY, _compile, close_lane, fetch_rows
from backend.domain.cabinet.services import _queue_statement


async def _measure(name: str, call: Callable[[], Awaitable[Any]], rounds: int) -> None:
    for _ in range(rounds // 10):
        await call()
    started = time.process_time()
    for _ in range(rounds):
        await call()
    per = (time.process_time() - started) / rounds * 1000
    print(f"| {name} | {per:.3f} |")


async def main(url: str, rounds: int) -> None:
    engine = create_async_engine(url, pool_size=2)
    autocommit = async_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))
    # What a GET request gets (backend/db/engine.py): fastread on a pooled connection.
    read_only = async_sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"), info={READ_ONLY: True}
    )
    transactional = async_sessionmaker(engine)
    stmt = _queue_statement(False, False)
    async with engine.connect() as conn:
        position = (
            await conn.execute(
                text(
                    "SELECT position_id FROM cabinet_items WHERE folder = 'resolve' "
                    "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
                )
            )
        ).scalar_one()
        params = {"position_id": position, "folder": "resolve", "limit": 21}
        compiled = _compile(stmt, conn.dialect)
        args = [params.get(n, compiled.defaults.get(n)) for n in compiled.names]
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None

        async def raw() -> Any:
            return await driver.fetch(compiled.sql, *args)

        print("| path | CPU ms per execution |")
        print("|---|---:|")
        await _measure("raw asyncpg `Connection.fetch`", raw, rounds)

    async def pooled() -> Any:
        async with read_only() as session:
            return await fetch_rows(session, stmt, params)

    async def pooled_as_a_get() -> Any:
        # backend/web/deps.py leaves such a session unclosed: it took nothing to give back.
        return await fetch_rows(read_only(), stmt, params)

    async def fast() -> Any:
        async with autocommit() as session:
            return await fetch_rows(session, stmt, params)

    async def session_autocommit() -> Any:
        async with autocommit() as session:
            return (await session.execute(stmt, params)).all()

    async def session_transaction() -> Any:
        async with transactional() as session:
            return (await session.execute(stmt, params)).all()

    await _measure("`fetch_rows` in a read-only session (the read lane), closed", pooled, rounds)
    await _measure(
        "`fetch_rows` in a read-only session left unclosed (as a GET's)", pooled_as_a_get, rounds
    )
    await _measure("`fetch_rows` in an autocommit session", fast, rounds)
    await _measure("`AsyncSession.execute`, autocommit", session_autocommit, rounds)
    await _measure("`AsyncSession.execute`, BEGIN … ROLLBACK", session_transaction, rounds)
    await close_lane(engine)
    await engine.dispose()


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="bench.driver_overhead", description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default="kabinet_bench")
    p.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432")
    p.add_argument("--rounds", type=int, default=3000)
    a = p.parse_args()
    asyncio.run(main(f"{a.pg.rstrip('/')}/{a.db}", a.rounds))
