"""EXPLAIN (ANALYZE, BUFFERS) of the two cabinet queries for the governor.

    KABINET_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/kabinet_bench \\
        .venv/bin/python -m bench.explain

The statements are not copied here: `backend.domain.cabinet.services.folder_counts` and
`.queue` run for real against the database, and asyncpg's query logger records the exact
SQL and parameters they send (they run straight on asyncpg, backend/db/fastread.py, so a
SQLAlchemy hook would not see them); each is then run again under EXPLAIN with the same
parameters. The first EXPLAIN of each query warms the cache; the second is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine


async def _sent(
    engine: AsyncEngine, work: Callable[[AsyncSession], Awaitable[Any]]
) -> list[tuple[str, Any]]:
    """(SQL, parameters) of each statement `work` sent on a fresh session, BEGIN aside."""
    seen: list[tuple[str, Any]] = []

    def log(query: Any) -> None:
        seen.append((query.query, query.args))

    async with AsyncSession(engine) as fresh:
        raw = await (await fresh.connection()).get_raw_connection()
        driver = raw.driver_connection
        driver.add_query_logger(log)
        try:
            await work(fresh)
            await asyncio.sleep(0)  # asyncpg calls a logger soon after, not at once
        finally:
            driver.remove_query_logger(log)
    return [(sql, args) for sql, args in seen if not sql.strip().upper().startswith("BEGIN")]


async def run(url: str, login: str, folder: str, limit: int) -> None:
    from backend.clock import region_today
    from backend.db.models import Position, PositionHolder, User
    from backend.domain.accounts.access import OWN_RIGHTS, Cabinet
    from backend.domain.cabinet import services
    from backend.settings import get_settings

    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+asyncpg://" + url.split("://", 1)[1]
    engine = create_async_engine(url)
    try:
        async with AsyncSession(engine) as session:
            pos = (
                await session.execute(
                    select(Position)
                    .join(PositionHolder, PositionHolder.position_id == Position.id)
                    .join(User, User.id == PositionHolder.user_id)
                    .where(User.login == login)
                )
            ).scalar_one()
            cabinet = Cabinet(pos.id, pos.title, "", "own", OWN_RIGHTS, pos.dsp_cleared)
            today = region_today(get_settings().timezone)
            counts = (
                await session.execute(
                    text(
                        "SELECT count(*) FILTER (WHERE state = 'open'), count(*) "
                        "FROM cabinet_items WHERE position_id = :p"
                    ),
                    {"p": pos.id},
                )
            ).one()
            total = await session.scalar(text("SELECT count(*) FROM documents"))
            print(
                f"-- {login}: position {pos.id}; {counts[0]} open items of {counts[1]} "
                f"in his cabinet; {total} documents in the database; today {today}"
            )
            captured = [
                *await _sent(engine, lambda s: services.folder_counts(s, cabinet, today)),
                *await _sent(
                    engine, lambda s: services.queue(s, cabinet, folder, limit, None, today)
                ),
            ]
            names = [
                "folder counts (services.folder_counts)",
                f"queue folder={folder} limit={limit} (services.queue)",
            ]
            for name, (statement, params) in zip(names, captured, strict=True):
                print(f"\n-- {name}\n-- parameters: {params}\n{statement}\n")
                conn = await session.connection()
                for attempt in range(2):
                    plan = (
                        (
                            await conn.exec_driver_sql(
                                "EXPLAIN (ANALYZE, BUFFERS) " + statement, params
                            )
                        )
                        .scalars()
                        .all()
                    )
                    if attempt == 1:
                        print("\n".join(plan))
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.explain", description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default=os.environ.get("KABINET_DATABASE_URL"))
    p.add_argument("--login", default="governor")
    p.add_argument("--folder", default="resolve")
    p.add_argument("--limit", type=int, default=20)
    args = p.parse_args(argv)
    if not args.database_url or "postgres" not in args.database_url:
        print("give a PostgreSQL --database-url or KABINET_DATABASE_URL", file=sys.stderr)
        return 2
    asyncio.run(run(args.database_url, args.login, args.folder, args.limit))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
