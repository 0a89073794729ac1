"""EXPLAIN (ANALYZE, BUFFERS) of the two cabinet queries for the governor.

    KABINET_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/kabinet_bench \\
        .venv/bin/python -m bench.explain

The statements are not copied here: `backend.domain.cabinet.services.folder_counts` and
`.queue` run for real against the database, and a SQLAlchemy `before_cursor_execute` hook
records the exact SQL and parameters they send; each is then run again under EXPLAIN with
the same parameters. The first EXPLAIN of each query warms the cache; the second is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine


async def run(url: str, login: str, folder: str, limit: int) -> None:
    from backend.clock import region_today
    from backend.db.models import Position, PositionHolder, User
    from backend.domain.accounts.access import OWN_RIGHTS, Cabinet
    from backend.domain.cabinet import services
    from backend.settings import get_settings

    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+asyncpg://" + url.split("://", 1)[1]
    engine = create_async_engine(url)
    captured: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        captured.append((statement, params))

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
            event.listen(engine.sync_engine, "before_cursor_execute", capture)
            # Fresh sessions whose transaction has not begun: there backend/db/fastread.py
            # hands the statement to SQLAlchemy (which the hook sees) instead of asyncpg;
            # the SQL is the same compiled text either way.
            async with AsyncSession(engine) as fresh:
                await services.folder_counts(fresh, cabinet, today)
            async with AsyncSession(engine) as fresh:
                await services.queue(fresh, cabinet, folder, limit, None, today)
            event.remove(engine.sync_engine, "before_cursor_execute", capture)
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
