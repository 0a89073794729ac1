"""Fixtures for backend tests: one migrated database with the demo region per backend."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import Litestar
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.app import create_app
from backend.db.fastread import close_lane
from backend.db.migrate import upgrade
from backend.demo.loader import load_demo
from backend.domain.files.storage import BlobStore
from backend.settings import Settings, load_settings
from push.testing_service import LoopbackPushService

PG_ADMIN_URL = os.environ.get(
    "KABINET_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PG_TEST_DB = f"kabinet_test_{os.getpid()}"
UNDER_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


async def _pg_answers() -> str | None:
    try:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


PG_PROBLEM = asyncio.run(_pg_answers())
BACKENDS = ["sqlite", "pg"]


@dataclass
class Env:
    """One running app on one database, with the demo region loaded."""

    name: str
    app: Litestar
    client: httpx.AsyncClient
    settings: Settings
    push_service: LoopbackPushService
    tokens: dict[str, str] = field(default_factory=dict)
    me: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def engine(self) -> AsyncEngine:
        return self.app.state.services.engine  # type: ignore[no-any-return]

    async def login(self, login: str) -> dict[str, str]:
        if login not in self.tokens:
            r = await self.client.post(
                "/api/v1/auth/login", json={"login": login, "password": "demo"}
            )
            assert r.status_code == 200, r.text
            self.tokens[login] = r.json()["access_token"]
        return {"Authorization": f"Bearer {self.tokens[login]}"}

    async def cabinets(self, login: str) -> dict[str, Any]:
        if login not in self.me:
            r = await self.client.get("/api/v1/me", headers=await self.login(login))
            assert r.status_code == 200, r.text
            self.me[login] = r.json()
        return self.me[login]

    async def own_position(self, login: str) -> str:
        me = await self.cabinets(login)
        return next(c["position_id"] for c in me["cabinets"] if c["role"] == "own")

    async def count(self, table: str) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def _prepare_database(name: str, data_dir: Path) -> str:
    if name == "sqlite":
        return f"sqlite+aiosqlite:///{data_dir / 'kabinet.db'}"
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_TEST_DB}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{PG_TEST_DB}"')
    finally:
        await conn.close()
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{PG_TEST_DB}"


async def _drop_pg() -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_TEST_DB}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session", params=BACKENDS)
async def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Env]:
    name: str = request.param
    if name == "pg" and PG_PROBLEM:
        if UNDER_CI:
            pytest.fail(f"PostgreSQL is required under CI but does not answer: {PG_PROBLEM}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {PG_PROBLEM}")
    data_dir = tmp_path_factory.mktemp(f"data-{name}")
    url = await _prepare_database(name, data_dir)
    # A real push service on loopback that decrypts every message and checks VAPID.
    push_service = LoopbackPushService().start()
    settings = dataclasses.replace(
        load_settings(),
        data_dir=data_dir,
        database_url=url,
        jwt_secret=None,
        max_upload_bytes=3 * 1024 * 1024,
        max_pages=20,
        max_image_pixels=20_000_000,
        login_max_failures=5,
        push_allowlist=(push_service.origin,),
    )
    await asyncio.to_thread(upgrade, "head", url)
    app = create_app(settings)
    await load_demo(
        app.state.services.engine,
        BlobStore(settings.files_dir),
        documents=40,
        seed=7,
        now=dt.datetime.now(dt.UTC),
    )
    # httpx's ASGI transport runs the app on the test's own event loop, so the app's pool
    # and the tests' direct queries share one loop (asyncpg connections are loop-bound).
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield Env(name, app, client, settings, push_service)
    await close_lane(app.state.services.engine)
    await app.state.services.engine.dispose()
    push_service.stop()
    if name == "pg":
        await _drop_pg()


def random_uuid() -> str:
    return str(uuid.uuid4())
