"""Alembic environment: async, URL from Kabinet settings (or the config's main option)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from alembic import context
from sqlalchemy.engine import Connection

from backend.db.engine import make_engine
from backend.db.models import Base
from backend.settings import load_settings

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    settings = load_settings()
    url = context.config.attributes.get("database_url")
    if url:
        settings = replace(settings, database_url=url)
    engine = make_engine(settings)
    async with engine.connect() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


asyncio.run(_main())
